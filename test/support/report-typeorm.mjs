// `node --import ./test/support/report-typeorm.mjs …`: as the process exits, print on stdout
// which TypeORM copies it loaded (one line, `TypeORM loaded: typeorm@1.1.1`).
import { loadedTypeormCopies } from './loaded-typeorm.mjs';

process.on('exit', () =>
  process.stdout.write(`TypeORM loaded: ${loadedTypeormCopies().join(', ')}\n`),
);
