// Single-op ONNX models built in code (no model files): a minimal protobuf writer for the parts of
// onnx.proto a one-node graph needs: ModelProto (ir_version 8, opset imports), GraphProto (node,
// inputs, outputs), NodeProto (inputs, outputs, op_type, domain, attributes), AttributeProto
// (float, int, ints) and ValueInfoProto with float tensor shapes. Field numbers from onnx.proto3.

class Writer {
  private bytes: number[] = [];
  varint(v: number): this {
    // non-negative ints (and negative int64 as 10-byte two's complement)
    let n = BigInt.asUintN(64, BigInt(v));
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n) b |= 0x80;
      this.bytes.push(b);
    } while (n);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }
  bytesField(field: number, b: Uint8Array | number[]): this {
    this.tag(field, 2).varint(b.length);
    this.bytes.push(...b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }
  message(field: number, m: Writer): this {
    return this.bytesField(field, m.finish());
  }
  packedInts(field: number, v: readonly number[]): this {
    const w = new Writer();
    for (const x of v) w.varint(x);
    return this.bytesField(field, w.finish());
  }
  finish(): Uint8Array {
    return new Uint8Array(this.bytes);
  }
}

export type Attr = number | readonly number[] | { float: number };

export interface OnnxNode {
  op: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attr>;
}

const FLOAT = 1;

function valueInfo(name: string, shape: readonly number[]): Writer {
  const dims = new Writer();
  for (const d of shape) dims.message(1, new Writer().int(1, d));
  const tensor = new Writer().int(1, FLOAT).message(2, dims);
  return new Writer().string(1, name).message(2, new Writer().message(1, tensor));
}

function attribute(name: string, v: Attr): Writer {
  const w = new Writer().string(1, name);
  if (typeof v === 'number') return w.int(3, v).int(20, 2); // INT
  if ('float' in v) return w.float(2, v.float).int(20, 1); // FLOAT
  return w.packedInts(8, v).int(20, 7); // INTS
}

/** A model of one node; inputs and outputs are float tensors of the given shapes. */
export function singleOpModel(node: OnnxNode, inputs: Record<string, readonly number[]>, outputs: Record<string, readonly number[]>, opset = 17): Uint8Array {
  const n = new Writer();
  for (const i of node.inputs) n.string(1, i);
  for (const o of node.outputs) n.string(2, o);
  n.string(3, node.op).string(4, node.op);
  for (const [k, v] of Object.entries(node.attrs ?? {})) n.message(5, attribute(k, v));
  if (node.domain) n.string(7, node.domain);
  const g = new Writer().message(1, n).string(2, `single ${node.op}`);
  for (const [k, s] of Object.entries(inputs)) g.message(11, valueInfo(k, s));
  for (const [k, s] of Object.entries(outputs)) g.message(12, valueInfo(k, s));
  const m = new Writer().int(1, 8).string(2, 'medseg-bench').message(7, g).message(8, new Writer().string(1, '').int(2, opset));
  if (node.domain) m.message(8, new Writer().string(1, node.domain).int(2, 1));
  return m.finish();
}
