// `weights`: checkpoint readers (.pth, .npz/.npy, .safetensors), the safetensors writer, model
// schemas, conversion to the runtime's safetensors format, and streaming load onto the GPU.
export { load, type WeightSource, type LoadOptions, type LoadedWeights, type LoadProgress } from './load.js';
export { convert, planConversion, planTargets, openCheckpoint, detectFormat, SchemaMismatchError } from './convert.js';
export type { ConvertOptions, ConversionPlan, ConvertResult, PlanOptions, Checkpoint, CheckpointFormat, OpenOptions } from './convert.js';
export { convertCached, clearCache, cacheKey, type CachedResult } from './cache.js';
export { readPth, stateDict, stateDictCandidates, isLegacyTorchFile, PthTensor, StorageRef, type PthCheckpoint, type FoundStateDict, type StateDictCandidate, type StateDictOptions } from './pth.js';
export { unpickle, PyDict, PyTuple, type Globals } from './pickle.js';
export { readNpz, readNpy, parseNpyHeader, type NpzArchive, type NpyHeader } from './npz.js';
export { readSafetensors, writeSafetensors, serializeSafetensors, type SafetensorsFile, type SafetensorsEntry, type WriteTarget } from './safetensors.js';
export { save } from './save.js';
export { ZipArchive, type ZipEntry } from './zip.js';
export { bytesSource, blobSource, MemorySink, crc32, type ByteSource, type ByteSink } from './source.js';
export { readFloat32, type TensorRecord } from './record.js';
export { toFloat32, fromFloat32, f16BitsToNumber, numberToF16Bits, bf16BitsToNumber, numberToBf16Bits, itemSize, type DType } from './dtype.js';
export { schemasFor, scaledSchema, scaleShape, transunetNpzManifest, modelNames, type Schema, type ModelName } from './schemas/index.js';
export { manifests } from './schemas/manifests.gen.js';
