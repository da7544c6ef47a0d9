// Softmax and log-softmax along one dim of a contiguous tensor (starting at an element offset)
// seen as [outer, D, inner]:
// y = exp(x - max) / sum(exp(x - max)), log_y = x - max - log(sum(exp(x - max))), f32 throughout.
// Backward: dx = y * (dy - sum(dy * y)) for softmax, dx = dy - exp(log_y) * sum(dy) for log-softmax.
// One invocation per row (`*_serial`), or 64 per row with workgroup reductions (`*_workgroup`, long rows),
// or rows split into chunks of `chunk` elements over many workgroups (`*_chunk_*`, very long rows):
// a first pass writes each chunk's (max, sum of exp) or partial dot, the second merges a row's
// chunks in a fixed order (every workgroup of the row the same way) and writes its chunk.
// LOG (override) selects log-softmax.
// Bound: Mesa's llvmpipe (gallivm; Mesa 22.3.6 through Dawn's OpenGL backend) counts the loop passes
// of an invocation (one counter of 65535 per batch of 8 invocations, shared by every loop, inner
// loops in full) and silently leaves every loop once it runs out: a workgroup softmax over a row of
// 2.2M (two loops of 34k passes) wrote only part of it. src/ops/softmax.ts picks the kernel so that
// no invocation runs more than LOOP_BUDGET (16384) passes: serial rows of at most 5460 (3 loops),
// workgroup rows of at most 64 * 8160 (2 loops of a 64th each), chunks of 64 * 4096.
// #include _strided

override LOG: bool = false;

struct Params {
  outer: u32,
  dim: u32,
  inner: u32,
  x_offset: u32,
  dy_offset: u32,
  chunk: u32,   // elements per chunk (*_chunk_* entries)
  chunks: u32,  // chunks per row
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn row_base(row: u32) -> u32 {
  return (row / params.inner) * params.dim * params.inner + row % params.inner;
}

@compute @workgroup_size(64)
fn forward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = linear_id(wid, nwg, lid, 64u);
  if (row >= params.outer * params.inner) { return; }
  let base = row_base(row);
  let s = params.inner;
  var m = -3.4028234663852886e38;
  for (var i = 0u; i < params.dim; i++) { m = max(m, x[params.x_offset + base + i * s]); }
  var sum = 0.0;
  for (var i = 0u; i < params.dim; i++) { sum += exp(x[params.x_offset + base + i * s] - m); }
  let log_sum = log(sum);
  for (var i = 0u; i < params.dim; i++) {
    let z = x[params.x_offset + base + i * s] - m;
    out[base + i * s] = select(exp(z) / sum, z - log_sum, LOG);
  }
}

// x holds the forward output (y, or log_y when LOG).
@compute @workgroup_size(64)
fn backward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = linear_id(wid, nwg, lid, 64u);
  if (row >= params.outer * params.inner) { return; }
  let base = row_base(row);
  let s = params.inner;
  var dot = 0.0;
  for (var i = 0u; i < params.dim; i++) {
    dot += select(dy[params.dy_offset + base + i * s] * x[params.x_offset + base + i * s], dy[params.dy_offset + base + i * s], LOG);
  }
  for (var i = 0u; i < params.dim; i++) {
    let y = x[params.x_offset + base + i * s];
    let g = dy[params.dy_offset + base + i * s];
    out[base + i * s] = select(y * (g - dot), g - exp(y) * dot, LOG);
  }
}

var<workgroup> red: array<f32, 64>;

fn wg_max(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] = max(red[lid], red[lid + k]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn forward_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  let valid = row < params.outer * params.inner;
  let base = select(0u, row_base(row), valid);
  let n = select(0u, params.dim, valid);
  let s = params.inner;
  // One online pass per invocation (running max and rescaled sum), then the workgroup max and the
  // sum of the partial sums rescaled to it: the row is read twice, not three times.
  var m_own = -3.4028234663852886e38;
  var s_own = 0.0;
  for (var i = lid; i < n; i += 64u) {
    let xi = x[params.x_offset + base + i * s];
    let m_new = max(m_own, xi);
    s_own = s_own * exp(m_own - m_new) + exp(xi - m_new);
    m_own = m_new;
  }
  let m = wg_max(m_own, lid);
  let sum = wg_sum(s_own * exp(m_own - m), lid);
  let log_sum = log(sum);
  for (var i = lid; i < n; i += 64u) {
    let z = x[params.x_offset + base + i * s] - m;
    out[base + i * s] = select(exp(z) / sum, z - log_sum, LOG);
  }
}

@compute @workgroup_size(64)
fn backward_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  let valid = row < params.outer * params.inner;
  let base = select(0u, row_base(row), valid);
  let n = select(0u, params.dim, valid);
  let s = params.inner;
  var dot = 0.0;
  for (var i = lid; i < n; i += 64u) {
    dot += select(dy[params.dy_offset + base + i * s] * x[params.x_offset + base + i * s], dy[params.dy_offset + base + i * s], LOG);
  }
  dot = wg_sum(dot, lid);
  for (var i = lid; i < n; i += 64u) {
    let y = x[params.x_offset + base + i * s];
    let g = dy[params.dy_offset + base + i * s];
    out[base + i * s] = select(y * (g - dot), g - exp(y) * dot, LOG);
  }
}

// ---- rows split into chunks: workgroup (p, row) handles elements [p * chunk, (p + 1) * chunk) ----
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

fn chunk_row(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.z * nwg.y + wid.y;
}

fn chunk_end(p: u32) -> u32 {
  return min(params.dim, (p + 1u) * params.chunk);
}

// partial[(row * chunks + p) * 2 ..] = (max, sum of exp(x - max)) of chunk p.
@compute @workgroup_size(64)
fn forward_chunk_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = chunk_row(wid, nwg);
  let p = wid.x;
  let valid = row < params.outer * params.inner;
  let base = select(0u, row_base(row), valid);
  let e1 = select(0u, chunk_end(p), valid);
  let s = params.inner;
  var m_own = -3.4028234663852886e38;
  var s_own = 0.0;
  for (var i = p * params.chunk + lid; i < e1; i += 64u) {
    let xi = x[params.x_offset + base + i * s];
    let m_new = max(m_own, xi);
    s_own = s_own * exp(m_own - m_new) + exp(xi - m_new);
    m_own = m_new;
  }
  let m = wg_max(m_own, lid);
  let sum = wg_sum(s_own * exp(m_own - m), lid);
  if (lid == 0u && valid) {
    let o = (row * params.chunks + p) * 2u;
    partial[o] = m;
    partial[o + 1u] = sum;
  }
}

// The row's max and sum from its chunks' (max, sum), then chunk p's outputs.
@compute @workgroup_size(64)
fn forward_chunk_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = chunk_row(wid, nwg);
  let p = wid.x;
  let valid = row < params.outer * params.inner;
  let base = select(0u, row_base(row), valid);
  let nq = select(0u, params.chunks, valid);
  let e1 = select(0u, chunk_end(p), valid);
  let s = params.inner;
  var m_own = -3.4028234663852886e38;
  var s_own = 0.0;
  for (var q = lid; q < nq; q += 64u) {
    let o = (row * params.chunks + q) * 2u;
    let m_q = partial[o];
    let m_new = max(m_own, m_q);
    s_own = s_own * exp(m_own - m_new) + partial[o + 1u] * exp(m_q - m_new);
    m_own = m_new;
  }
  let m = wg_max(m_own, lid);
  let sum = wg_sum(s_own * exp(m_own - m), lid);
  let log_sum = log(sum);
  for (var i = p * params.chunk + lid; i < e1; i += 64u) {
    let z = x[params.x_offset + base + i * s] - m;
    out[base + i * s] = select(exp(z) / sum, z - log_sum, LOG);
  }
}

// partial[row * chunks + p] = chunk p's part of sum(dy * y) (softmax) or sum(dy) (log-softmax).
@compute @workgroup_size(64)
fn backward_chunk_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = chunk_row(wid, nwg);
  let p = wid.x;
  let valid = row < params.outer * params.inner;
  let base = select(0u, row_base(row), valid);
  let e1 = select(0u, chunk_end(p), valid);
  let s = params.inner;
  var dot = 0.0;
  for (var i = p * params.chunk + lid; i < e1; i += 64u) {
    dot += select(dy[params.dy_offset + base + i * s] * x[params.x_offset + base + i * s], dy[params.dy_offset + base + i * s], LOG);
  }
  dot = wg_sum(dot, lid);
  if (lid == 0u && valid) { partial[row * params.chunks + p] = dot; }
}

@compute @workgroup_size(64)
fn backward_chunk_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = chunk_row(wid, nwg);
  let p = wid.x;
  let valid = row < params.outer * params.inner;
  let base = select(0u, row_base(row), valid);
  let nq = select(0u, params.chunks, valid);
  let e1 = select(0u, chunk_end(p), valid);
  let s = params.inner;
  var dot = 0.0;
  for (var q = lid; q < nq; q += 64u) { dot += partial[row * params.chunks + q]; }
  dot = wg_sum(dot, lid);
  for (var i = p * params.chunk + lid; i < e1; i += 64u) {
    let y = x[params.x_offset + base + i * s];
    let g = dy[params.dy_offset + base + i * s];
    out[base + i * s] = select(y * (g - dot), g - exp(y) * dot, LOG);
  }
}
