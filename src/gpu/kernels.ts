// Kernel registry: WGSL source by name, reflected with wgsl_reflect (bindings, the `Params`
// uniform struct, workgroup sizes), compute pipelines cached by (file, entry point, overrides),
// and uniform packing by field name. The TS side never repeats a shader's bindings or layout.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { shaderSources } from './shader-sources.gen.js';

export type Overrides = Record<string, number>;
export type ParamValue = number | boolean | ArrayLike<number>;

interface ParamField {
  name: string;
  offset: number;
  size: number;
  /** scalar kind of each element */
  scalar: 'u32' | 'i32' | 'f32';
  /** number of scalars, and their byte stride (16 for arrays of vec4, 4 otherwise) */
  count: number;
}

export interface Pipeline {
  key: string;
  file: string;
  entry: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** binding variable name -> binding index and whether it is read-only storage */
  bindings: Map<string, { binding: number; kind: 'uniform' | 'storage' | 'read-only-storage' }>;
  params?: { binding: number; size: number; fields: Map<string, ParamField> };
  workgroupSize: [number, number, number];
}

interface ShaderModule {
  module: GPUShaderModule;
  reflect: WgslReflect;
}

const SCALARS = new Set(['u32', 'i32', 'f32']);

function paramFields(reflect: WgslReflect, varName: string): { size: number; fields: Map<string, ParamField> } | undefined {
  const u = reflect.uniforms.find((v) => v.name === varName);
  if (!u) return undefined;
  const fields = new Map<string, ParamField>();
  const type = u.type as unknown as { members?: { name: string; offset: number; size: number; type: { name: string; format?: { name: string; format?: { name: string } }; count?: number } }[] };
  for (const m of type.members ?? []) {
    const t = m.type;
    let scalar: string | undefined;
    let count = 1;
    if (SCALARS.has(t.name)) scalar = t.name;
    else if (/^vec[234]/.test(t.name)) {
      scalar = t.format?.name;
      count = Number(t.name[3]);
    } else if (t.name === 'array' && t.format) {
      const inner = t.format;
      if (SCALARS.has(inner.name)) {
        throw new Error(`uniform ${varName}.${m.name}: arrays of scalars need 16-byte stride in uniforms; use array<vec4<...>>`);
      }
      scalar = inner.format?.name;
      count = (t.count ?? 0) * 4;
    }
    if (!scalar || !SCALARS.has(scalar)) throw new Error(`uniform ${varName}.${m.name}: unsupported type ${t.name}`);
    fields.set(m.name, { name: m.name, offset: m.offset, size: m.size, scalar: scalar as ParamField['scalar'], count });
  }
  return { size: Math.max(16, Math.ceil(u.size / 16) * 16), fields };
}

export class KernelRegistry {
  private sources = new Map<string, string>(Object.entries(shaderSources));
  private modules = new Map<string, ShaderModule>();
  private pipelines = new Map<string, Pipeline>();
  compiledPipelines = 0;

  constructor(
    private device: GPUDevice,
    private reportError: (context: string, error: GPUError) => void,
  ) {}

  /** Adds (or replaces) a WGSL source, e.g. a benchmark variant or a test shader. */
  register(file: string, source: string): void {
    this.sources.set(file, source);
    this.modules.delete(file);
    for (const k of [...this.pipelines.keys()]) if (k.startsWith(`${file}:`)) this.pipelines.delete(k);
  }

  has(file: string): boolean {
    return this.sources.has(file);
  }

  /** The source with `// #include name` lines replaced by shaders/name.wgsl (once each). */
  source(file: string, included = new Set<string>()): string {
    const s = this.sources.get(file);
    if (s === undefined) throw new Error(`medseg: no kernel file '${file}.wgsl' (known: ${[...this.sources.keys()].join(', ')})`);
    included.add(file);
    return s.replace(/^\/\/ #include (\S+)\s*$/gm, (_, name: string) => (included.has(name) ? '' : this.source(name, included)));
  }

  private shaderModule(file: string): ShaderModule {
    let m = this.modules.get(file);
    if (!m) {
      const code = this.source(file);
      let reflect: WgslReflect;
      try {
        reflect = new WgslReflect(code);
      } catch (e) {
        throw new Error(`medseg: kernel ${file}.wgsl does not parse: ${(e as Error).message}`);
      }
      const module = this.device.createShaderModule({ code, label: `${file}.wgsl` });
      m = { module, reflect };
      this.modules.set(file, m);
    }
    return m;
  }

  /** Returns the cached pipeline for (file, entry, overrides), compiling it on first use. */
  pipeline(file: string, entry: string, overrides: Overrides = {}, context = ''): Pipeline {
    const okeys = Object.keys(overrides).sort();
    const key = `${file}:${entry}:${okeys.map((k) => `${k}=${overrides[k]}`).join(',')}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const { module, reflect } = this.shaderModule(file);
    const ep = reflect.entry.compute.find((e) => e.name === entry);
    if (!ep) throw new Error(`medseg: kernel ${file}.wgsl has no compute entry point '${entry}'`);
    const declared = new Set(reflect.overrides.map((o) => o.name));
    for (const k of okeys) if (!declared.has(k)) throw new Error(`medseg: kernel ${file}.wgsl declares no override '${k}'`);

    const bindings: Pipeline['bindings'] = new Map();
    const entries: GPUBindGroupLayoutEntry[] = [];
    let params: Pipeline['params'];
    for (const r of ep.resources) {
      if (r.group !== 0) throw new Error(`medseg: kernel ${file}.wgsl uses bind group ${r.group}; only group 0 is supported`);
      // resourceType 0 = uniform, 1 = storage (wgsl_reflect's ResourceType)
      const kind = r.resourceType === 0 ? 'uniform' : r.access === 'read' ? 'read-only-storage' : 'storage';
      if (r.resourceType !== 0 && r.resourceType !== 1) throw new Error(`medseg: kernel ${file}.wgsl binding '${r.name}' is not a buffer`);
      bindings.set(r.name, { binding: r.binding, kind });
      entries.push({ binding: r.binding, visibility: 4 /* GPUShaderStage.COMPUTE */, buffer: { type: kind } });
      if (kind === 'uniform') {
        const pf = paramFields(reflect, r.name);
        if (pf) params = { binding: r.binding, ...pf };
      }
    }
    const label = `${file}.wgsl:${entry}${okeys.length ? ` {${okeys.map((k) => `${k}=${overrides[k]}`).join(', ')}}` : ''}`;
    this.device.pushErrorScope('validation');
    const layout = this.device.createBindGroupLayout({ entries, label });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout], label }),
      compute: { module, entryPoint: entry, constants: overrides },
      label,
    });
    this.device.popErrorScope().then((err) => {
      if (err) this.reportError(`compiling ${label}${context ? ` (first used by ${context})` : ''}`, err);
    });
    // The workgroup size as compiled: evaluate override-sized dimensions with the given constants.
    const wg = ep.workgroupSize as unknown as (number | string)[] | undefined;
    const workgroupSize = [0, 1, 2].map((i) => {
      const v = wg?.[i];
      if (typeof v === 'number') return v;
      if (typeof v === 'string' && v in overrides) return overrides[v];
      return 1;
    }) as [number, number, number];
    p = { key, file, entry, pipeline, layout, bindings, params, workgroupSize };
    this.pipelines.set(key, p);
    this.compiledPipelines++;
    return p;
  }
}

/** Packs named values into the Params uniform layout of a pipeline. Unknown or missing names throw. */
export function packParams(p: Pipeline, values: Record<string, ParamValue>, into: DataView, at: number): void {
  const params = p.params!;
  for (const [name, v] of Object.entries(values)) {
    const f = params.fields.get(name);
    if (!f) throw new Error(`medseg: ${p.file}.wgsl:${p.entry} Params has no field '${name}' (has ${[...params.fields.keys()].join(', ')})`);
    const arr = typeof v === 'number' || typeof v === 'boolean' ? [Number(v)] : v;
    if (arr.length > f.count) throw new Error(`medseg: ${p.file}.wgsl Params.${name} holds ${f.count} values, got ${arr.length}`);
    for (let i = 0; i < arr.length; i++) {
      const o = at + f.offset + i * 4;
      const x = arr[i];
      if (f.scalar === 'f32') into.setFloat32(o, x, true);
      else if (f.scalar === 'i32') into.setInt32(o, x, true);
      else {
        if (x < 0) throw new Error(`medseg: ${p.file}.wgsl Params.${name}[${i}] is u32 but got ${x}`);
        into.setUint32(o, x, true);
      }
    }
  }
  for (const name of params.fields.keys()) {
    if (!(name in values) && !name.startsWith('_')) throw new Error(`medseg: ${p.file}.wgsl:${p.entry} Params.${name} was not given`);
  }
}
