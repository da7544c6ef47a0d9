// The parent's stderr filter (src/cli/filtered-child.ts): the GPU start-up lines seen on this
// project's machines (SwiftShader with XDG_RUNTIME_DIR unset, Dawn rejecting a Vulkan device,
// llvmpipe's "artificially reduced" limits) are dropped with their continuation lines; everything
// else passes unchanged, split across chunks anywhere, and a terminal's '\r' progress redraw passes
// at once instead of waiting for a newline.
import { describe, expect, it } from 'vitest';
import { NoiseFilter } from '../../src/cli/filtered-child.js';

const NOISE = [
  'error: XDG_RUNTIME_DIR is invalid or not set in the environment.',
  'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.',
  ' - While initializing adapter (backend=BackendType::Vulkan)',
  '    at InitializeImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)',
  '',
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.',
  'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 80 to 16 to fit dynamic offset allocation limit.',
  'WARNING: [Loader Message] Code 0 : windows_read_data_files_in_registry: Registry lookup failed to get layer manifest files.',
];

const run = (text: string, chunk: number) => {
  const f = new NoiseFilter();
  let out = '';
  for (let i = 0; i < text.length; i += chunk) out += f.push(text.slice(i, i + chunk));
  return out + f.end();
};

describe('NoiseFilter', () => {
  it('drops the known start-up lines and keeps the rest, in any chunking', () => {
    const keep = ['adapter: llvmpipe [opengl (llvmpipe)]', 'medseg: output mask m.nrrd: the name must end in .nii.gz or .nii', '', 'Warning: something else entirely'];
    const text = [NOISE[0], NOISE[0], keep[0], ...NOISE.slice(1, 5), keep[1], NOISE[5], NOISE[6], keep[2], keep[3], NOISE[7], 'last line without newline'].join('\n');
    for (const chunk of [1, 7, 64, text.length]) {
      expect(run(text, chunk), `chunks of ${chunk}`).toBe(`${keep[0]}\n${keep[1]}\n${keep[3]}\nlast line without newline`);
    }
  });
  it("passes a terminal's progress redraw ('\\r...') before its newline", () => {
    const f = new NoiseFilter();
    expect(f.push('steps 1/3')).toBe('');
    expect(f.push('\n')).toBe('steps 1/3\n');
    expect(f.push('\rsteps 1/3, 2 s\x1b[K')).toBe('\rsteps 1/3, 2 s\x1b[K');
    expect(f.push('\rsteps 2/3, 3 s\x1b[K\n')).toBe('\rsteps 2/3, 3 s\x1b[K\n');
    expect(f.end()).toBe('');
  });
});
