// Types for wgsl_reflect's ESM build (its package points `types` only at the CommonJS entry).
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
