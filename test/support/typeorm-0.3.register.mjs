// `node --import ./test/support/typeorm-0.3.register.mjs …`: run a command on TypeORM 0.3.
import { register } from 'node:module';

register('./typeorm-0.3.hooks.mjs', import.meta.url);
