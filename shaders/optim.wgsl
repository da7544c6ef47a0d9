// Optimiser updates, in place: each invocation reads one parameter element, its gradient and its
// state, and writes the new parameter and state back (param and state are read_write bindings).
// PyTorch's formulas (torch.optim, single-tensor path), g = grad (negated when MAXIMIZE):
//   sgd:  g += wd p; if momentum: buf = first ? g : momentum buf + (1 - dampening) g,
//         g = nesterov ? g + momentum buf : buf;  p -= lr g
//   adam: DECOUPLED (AdamW): p *= 1 - lr wd, else g += wd p;
//         m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
//         (amsgrad: vmax = max(vmax, v), used for v below)
//         p -= step_size m / (sqrt(v) / bc2_sqrt + eps),
//   with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) from the host.
// Entries: sgd (no momentum), sgd_momentum, adam, adam_amsgrad.
// #include _strided

override MAXIMIZE: bool = false;
override NESTEROV: bool = false;
override DECOUPLED: bool = false;

struct Params {
  n: u32,
  param_offset: u32,
  grad_offset: u32,
  first_step: u32,
  lr: f32,
  weight_decay: f32,
  momentum: f32,
  dampening: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  step_size: f32,
  bc2_sqrt: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> momentum_buffer: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq: array<f32>;
@group(0) @binding(6) var<storage, read_write> max_exp_avg_sq: array<f32>;

fn load_grad(i: u32) -> f32 {
  let g = grad[params.grad_offset + i];
  return select(g, -g, MAXIMIZE);
}

@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let pi = params.param_offset + i;
  let p = param[pi];
  let g = load_grad(i) + params.weight_decay * p;
  param[pi] = p - params.lr * g;
}

@compute @workgroup_size(256)
fn sgd_momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let pi = params.param_offset + i;
  let p = param[pi];
  var g = load_grad(i) + params.weight_decay * p;
  var buf = g;
  if (params.first_step == 0u) {
    buf = params.momentum * momentum_buffer[i] + (1.0 - params.dampening) * g;
  }
  momentum_buffer[i] = buf;
  if (NESTEROV) { g = g + params.momentum * buf; } else { g = buf; }
  param[pi] = p - params.lr * g;
}

// The shared part of Adam/AdamW: decay, moments; returns (p after decay, m) and updates v.
fn adam_moments(i: u32, pi: u32) -> vec2<f32> {
  var p = param[pi];
  var g = load_grad(i);
  if (DECOUPLED) {
    p = p * (1.0 - params.lr * params.weight_decay);
  } else {
    g = g + params.weight_decay * p;
  }
  let m0 = exp_avg[i];
  let m = m0 + (1.0 - params.beta1) * (g - m0);
  exp_avg[i] = m;
  exp_avg_sq[i] = params.beta2 * exp_avg_sq[i] + (1.0 - params.beta2) * g * g;
  return vec2<f32>(p, m);
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let pi = params.param_offset + i;
  let pm = adam_moments(i, pi);
  let denom = sqrt(exp_avg_sq[i]) / params.bc2_sqrt + params.eps;
  param[pi] = pm.x - params.step_size * pm.y / denom;
}

@compute @workgroup_size(256)
fn adam_amsgrad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let pi = params.param_offset + i;
  let pm = adam_moments(i, pi);
  let vmax = max(max_exp_avg_sq[i], exp_avg_sq[i]);
  max_exp_avg_sq[i] = vmax;
  let denom = sqrt(vmax) / params.bc2_sqrt + params.eps;
  param[pi] = pm.x - params.step_size * pm.y / denom;
}
