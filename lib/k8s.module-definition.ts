import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { K8sModuleOptions } from './options/k8s-options.interface.js';

export const { ConfigurableModuleClass, MODULE_OPTIONS_TOKEN: K8S_MODULE_OPTIONS } =
  new ConfigurableModuleBuilder<K8sModuleOptions>({ moduleName: 'K8s' })
    .setClassMethodName('forRoot')
    .setExtras({ isGlobal: false }, (definition, extras) => ({
      ...definition,
      global: extras.isGlobal,
    }))
    .build();
