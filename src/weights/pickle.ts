// A Python pickle interpreter (protocols 0-5, the opcodes torch.save and numpy write) that never
// executes code: GLOBAL / STACK_GLOBAL resolve only names on an allow-list the caller passes
// (e.g. `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`), REDUCE / NEWOBJ call the
// JS implementation registered for that name, and anything else is refused with an error
// naming the global. Persistent ids (torch's storages) go to a caller-supplied function.
// Python values map to: None -> null, bool -> boolean, int -> number (bigint past 2^53), float ->
// number, str -> string, bytes -> Uint8Array, list -> Array, tuple -> PyTuple, dict ->
// PyDict (a Map with attributes, for OrderedDict's `_metadata`), set -> Set.
import { latin1, utf8 } from './source.js';

export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

export class PyDict extends Map<unknown, unknown> {
  /** Instance attributes set by BUILD (an OrderedDict state dict's `_metadata`). */
  attrs: Record<string, unknown> = {};
  constructor(readonly pyType = 'dict') {
    super();
  }
}

/** What an allow-listed global does when called (REDUCE / NEWOBJ) or given state (BUILD). */
export interface GlobalImpl {
  call(args: unknown[], kwargs?: PyDict): unknown;
}

export type Globals = Record<string, GlobalImpl>;

/** A resolved allow-listed global on the stack (also passed as a value, e.g. a rebuild function). */
export class PyGlobal {
  constructor(
    readonly qualname: string,
    readonly impl: GlobalImpl,
  ) {}
}

/** Objects that handle BUILD themselves. */
export interface Stateful {
  setState(state: unknown): void;
}

const isStateful = (o: unknown): o is Stateful => typeof o === 'object' && o !== null && typeof (o as Stateful).setState === 'function';

export const baseGlobals: Globals = {
  'collections.OrderedDict': { call: (args) => dictFrom(args[0], 'OrderedDict') },
  'builtins.dict': { call: (args) => dictFrom(args[0], 'dict') },
  'builtins.set': { call: (args) => new Set(iterItems(args[0])) },
  'builtins.frozenset': { call: (args) => new Set(iterItems(args[0])) },
  'builtins.bytearray': { call: (args) => (args[0] instanceof Uint8Array ? args[0] : typeof args[0] === 'string' ? strBytes(args[0]) : new Uint8Array(0)) },
  // Protocol 2 pickles bytes objects as _codecs.encode(latin1 text, 'latin1').
  '_codecs.encode': { call: (args) => strBytes(String(args[0] ?? '')) },
};

function strBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

function iterItems(x: unknown): unknown[] {
  if (x === undefined || x === null) return [];
  if (Array.isArray(x)) return x;
  if (x instanceof PyTuple) return x.items;
  if (x instanceof Set) return [...x];
  throw new Error(`expected a sequence, got ${describe(x)}`);
}

function dictFrom(x: unknown, pyType: string): PyDict {
  const d = new PyDict(pyType);
  if (x instanceof Map) for (const [k, v] of x) d.set(k, v);
  else for (const kv of iterItems(x)) {
    const pair = kv instanceof PyTuple ? kv.items : (kv as unknown[]);
    d.set(pair[0], pair[1]);
  }
  return d;
}

export function describe(x: unknown): string {
  if (x === null) return 'None';
  if (x instanceof PyTuple) return `tuple(${x.items.length})`;
  if (x instanceof PyDict) return x.pyType;
  if (x instanceof PyGlobal) return x.qualname;
  if (Array.isArray(x)) return `list(${x.length})`;
  if (x instanceof Uint8Array) return `bytes(${x.length})`;
  return typeof x === 'object' ? (x.constructor?.name ?? 'object') : typeof x;
}

export interface UnpickleOptions {
  globals: Globals;
  persistentLoad?: (pid: unknown) => unknown;
  /** For error messages. */
  name?: string;
}

/** The pickle ended before its STOP: thrown when a read passes the end of the bytes given. */
export class PickleTruncatedError extends Error {
  constructor(
    message: string,
    /** How many bytes (from the start of the data) the read needed. */
    readonly needed: number,
  ) {
    super(message);
  }
}

/** Runs a pickle program and returns the value it STOPs with. */
export function unpickle(data: Uint8Array, options: UnpickleOptions): unknown {
  return unpickleAt(data, 0, options).value;
}

/**
 * Runs the pickle program that starts at byte `start` (a file may hold several one after another,
 * as the legacy torch.save format does) and returns its value and the offset after its STOP.
 */
export function unpickleAt(data: Uint8Array, start: number, options: UnpickleOptions): { value: unknown; end: number } {
  const where = options.name ?? 'pickle';
  let pos = start;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);

  const fail = (msg: string, at = pos): never => {
    throw new Error(`${where}: ${msg} (at byte ${at} of ${data.length})`);
  };
  const need = (n: number) => {
    if (!Number.isSafeInteger(n) || n < 0) fail(`a length of ${n} bytes is impossible (corrupt)`);
    if (pos + n > data.length) throw new PickleTruncatedError(`${where}: a length of ${n} bytes passes the end of the pickle (truncated or corrupt) (at byte ${pos} of ${data.length})`, pos + n);
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a length of ${v} bytes passes the end of the pickle`);
    return Number(v);
  };
  const bytes = (n: number) => {
    need(n);
    pos += n;
    return data.subarray(pos - n, pos);
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw new PickleTruncatedError(`${where}: unterminated text line (at byte ${pos} of ${data.length})`, data.length + 1);
    const s = latin1(data.subarray(pos, end));
    pos = end + 1;
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail('stack underflow');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail('MARK expected');
    return stack.splice(m!);
  };
  const resolve = (module: string, name: string) => {
    const q = `${module}.${name}`;
    const impl = options.globals[q];
    if (!impl) fail(`refusing global '${q}': only tensor and state-dict types are allowed in a checkpoint (this file may contain code)`);
    return new PyGlobal(q, impl);
  };
  const callGlobal = (g: unknown, args: unknown, kwargs?: PyDict) => {
    if (!(g instanceof PyGlobal)) fail(`cannot call a ${describe(g)}`);
    const a = args instanceof PyTuple ? args.items : Array.isArray(args) ? args : fail(`call arguments must be a tuple, got ${describe(args)}`);
    try {
      return (g as PyGlobal).impl.call(a as unknown[], kwargs);
    } catch (e) {
      return fail(`${(g as PyGlobal).qualname}: ${(e as Error).message}`);
    }
  };
  const persistent = (pid: unknown, at: number) => {
    if (!options.persistentLoad) fail('persistent id without a loader', at);
    try {
      return options.persistentLoad!(pid);
    } catch (e) {
      return fail(`persistent id: ${(e as Error).message}`, at);
    }
  };
  /** Decimal text of INT / LONG: Python's own limit (int_max_str_digits, 4300), as BigInt parsing is quadratic. */
  const decimal = (s: string, op: string, at: number) => {
    if (!/^[-+]?\d+$/.test(s)) fail(`bad ${op} '${s.slice(0, 40)}'`, at);
    if (s.length > 4301) fail(`${op} of ${s.length} digits (more than Python's 4300)`, at);
    return toInt(BigInt(s));
  };
  const toInt = (v: bigint) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
  const longLE = (b: Uint8Array) => {
    if (b.length === 0) return 0;
    // via hex text, which BigInt parses in linear time (shifting byte by byte is quadratic)
    const parts = new Array<string>(b.length);
    for (let i = 0; i < b.length; i++) parts[b.length - 1 - i] = HEX[b[i]];
    let v = BigInt(`0x${parts.join('')}`);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return toInt(v);
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) fail(`SETITEM(S) on a ${describe(d)}`);
    if (kv.length % 2) fail('odd number of items for SETITEMS');
    for (let i = 0; i < kv.length; i += 2) (d as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const appendItems = (l: unknown, xs: unknown[]) => {
    // (a loop: push(...xs) overflows the call stack past ~100k items)
    if (Array.isArray(l)) for (const x of xs) l.push(x);
    else if (l instanceof Set) for (const x of xs) l.add(x);
    else fail(`APPEND(S) on a ${describe(l)}`);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5', at);
        break;
      case 0x95: // FRAME: just a length prefix
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`, at);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: {
        const b = pop();
        stack.push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        stack.push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const x = pop();
        appendItems(top(), [x]);
        break;
      }
      case 0x65: {
        // APPENDS
        const xs = popMark();
        appendItems(top(), xs);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const xs = popMark();
        appendItems(top(), xs);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longLE(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail('negative LONG4 length', at);
        stack.push(longLE(bytes(n)));
        break;
      }
      case 0x49: {
        // INT (text; "00"/"01" are False/True in protocol 0)
        const s = line();
        if (s === '00' || s === '01') stack.push(s === '01');
        else stack.push(decimal(s, 'INT', at));
        break;
      }
      case 0x4c: {
        // LONG (text)
        stack.push(decimal(line().replace(/L$/, ''), 'LONG', at));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: {
        // FLOAT (text)
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/nan/i.test(s)) fail(`bad FLOAT '${s}'`, at);
        stack.push(v);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(bytes(u64())));
        break;
      case 0x56: // UNICODE (raw-unicode-escape text)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a, b) => String.fromCodePoint(parseInt(a ?? b, 16))));
        break;
      case 0x54: {
        // BINSTRING (py2 str: kept as text)
        const n = i32();
        if (n < 0) fail('negative BINSTRING length', at);
        stack.push(latin1(bytes(n)));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1(bytes(u8())));
        break;
      case 0x53: {
        // STRING (quoted text)
        const s = line();
        const q = s[0];
        if ((q !== "'" && q !== '"') || s[s.length - 1] !== q) fail('bad STRING', at);
        stack.push(s.slice(1, -1));
        break;
      }
      case 0x42: // BINBYTES
        stack.push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()).slice());
        break;
      case 0x96: // BYTEARRAY8
        stack.push(bytes(u64()).slice());
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(resolve(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings', at);
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const f = pop();
        stack.push(callGlobal(f, args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(callGlobal(cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        stack.push(callGlobal(cls, args, kwargs instanceof PyDict ? kwargs : undefined));
        break;
      }
      case 0x69: {
        // INST "module\nname\n" (protocol 0): the class is resolved (so refused by name) and called with the items since MARK
        const module = line();
        const name = line();
        const g = resolve(module, name);
        stack.push(callGlobal(g, popMark()));
        break;
      }
      case 0x6f: {
        // OBJ (protocol 1): the class is the first item since MARK, the arguments the rest
        const items = popMark();
        if (!items.length) fail('OBJ without a class', at);
        stack.push(callGlobal(items[0], items.slice(1)));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (isStateful(obj)) obj.setState(state);
        else if (obj instanceof PyDict) {
          // An object's __dict__ (and, for a (dict, slots) pair, its slots).
          const parts = state instanceof PyTuple ? state.items : [state];
          for (const p of parts) if (p instanceof Map) for (const [k, v] of p) obj.attrs[String(k)] = v;
        } else if (state !== null) fail(`BUILD on a ${describe(obj)}`, at);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        stack.push(persistent(pid, at));
        break;
      }
      case 0x50: {
        // PERSID (text)
        const pid = line();
        stack.push(persistent(pid, at));
        break;
      }
      case 0x70: // PUT (text)
        memo.set(Number(line()), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET (text)
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const k = op === 0x67 ? Number(line()) : op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo entry ${k} is undefined`, at);
        stack.push(memo.get(k));
        break;
      }
      case 0x30: // POP
        if (marks.length && stack.length === marks[marks.length - 1]) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}${op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ''}`, at);
    }
  }
}
