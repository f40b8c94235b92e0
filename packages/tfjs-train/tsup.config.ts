import { libraryConfig } from '../../tsup.base';

export default libraryConfig({ external: ['@tensorflow/tfjs-core'] });
