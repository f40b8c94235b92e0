import { libraryConfig } from '../../tsup.base';

// shims: the CommonJS build gets an import.meta.url, which locates native/fast-conv.c.
export default libraryConfig({ external: ['@tensorflow/tfjs-core'], shims: true });
