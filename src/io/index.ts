// `io`: reading and writing medical volumes.
export { readNifti, writeNifti, type Volume, type Affine, type WriteOptions } from './nifti.js';
