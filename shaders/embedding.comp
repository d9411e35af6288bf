#version 450
// Embedding gather: y[i, d] = table[clamp(ids[i], 0, V-1), d].
//
// Out-of-range ids are clamped to the table (negative I32 ids to row 0, ids ≥ V to row V-1)
// so that a bad id can never read outside the table; callers validate ids where a wrong row
// matters. A table larger than one storage-buffer binding is gathered in several dispatches,
// each binding rows [v0, v0+vn) and writing only the outputs whose (clamped) id falls there.
//
// One invocation per output element (2-D grid, linear_id); the id load is shared by a row.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform Push {
  uint n, D;            // output rows and width
  uint V;               // rows of the whole table (for clamping)
  uint v0, vn;          // table rows bound in this dispatch
  uint ldt, ldy;        // row strides of the bound table chunk and of y
  uint t_off, y_off, id_off;
} p;

layout(set = 0, binding = 0) readonly buffer Ids { uint ids[]; };
#if T_T == DTYPE_F32
layout(set = 0, binding = 1) readonly buffer Table { float table[]; };
float load_t(uint e) { return table[e]; }
#else
layout(set = 0, binding = 1) readonly buffer Table { uint table[]; };
float load_t(uint e)
{
  uint w = table[e >> 1];
#if T_T == DTYPE_BF16
  return (e & 1u) != 0u ? bf16_hi(w) : bf16_lo(w);
#else
  return unpackHalf2x16(w)[e & 1u];
#endif
}
#endif
layout(set = 0, binding = 2) buffer Y { float y[]; };

void main()
{
  uint idx = linear_id(256);
  if (idx >= p.n * p.D) return;
  uint i = idx / p.D, d = idx % p.D;
  uint raw = ids[p.id_off + i];
#ifdef IDS_SIGNED
  uint row = int(raw) < 0 ? 0u : min(raw, p.V - 1u);
#else
  uint row = min(raw, p.V - 1u);
#endif
  if (row < p.v0 || row >= p.v0 + p.vn) return;
  y[p.y_off + i * p.ldy + d] = load_t(p.t_off + (row - p.v0) * p.ldt + d);
}
