// `io`: reading and writing medical volumes and 2-D images.
export { readNifti, writeNifti, type Volume, type Affine, type WriteOptions } from './nifti.js';
export { type Image2D, type ImageReadOptions, DEFAULT_MAX_PIXELS, isPng, isJpeg, to8Bit } from './image.js';
export { readPng, writePng, writePngMask, type PngImage } from './png.js';
export { readJpeg } from './jpeg.js';
export { readImage } from './read-image.js';
