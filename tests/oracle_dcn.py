#!/usr/bin/python3
"""Oracle for tests/test_dcn.c: modulated deformable conv v2 (mmcv semantics).

Usage: /usr/bin/python3 tests/oracle_dcn.py OUT.h5

Reference: torchvision.ops.deform_conv2d with mask, in float64 (torch 1.13 / torchvision 0.14, CPU),
plus a naive float64 Python-loop implementation of mmcv's rules for the small cases (edge
coordinates, offset reinterpretation), cross-checked against torchvision here.

Per case `caseK/` the file holds float32 datasets:
  meta      [n, c_in, h, w, c_out, k, stride, pad, dil, has_bias, layout, c0, m0, hl, wl, ho, wo]
            layout 0: offset (n, 18, ho, wo) and mask (n, 9, ho, wo) contiguous;
            layout 1: DeformFusion slices: offset = channels [c0, c0+18) of om (n, 81, hl, wl),
                      mask = channels [m0, m0+9) of msig (n, 27, hl, wl), hl == ho, wl == wo;
            layout 2: mmcv's offset reinterpretation (masa-spec 1.4.1, high branch): the same
                      tensors read from channel c0 / m0 with the OUTPUT strides (channel ho*wo).
  x, weight, [bias], offset + mask (layout 0) or om + msig (layouts 1, 2), dy (upstream gradient),
  y, dx, dweight, [dbias], and doffset + dmask (layout 0) or dom + dmsig (gradient w.r.t. om, msig).
  Cases with a naive reference also hold naive/{y, dx, doffset|dom, dmask|dmsig, dweight, dbias}.

Boundary rules: the forward of torchvision equals mmcv's (0 unless -1 < y < h and -1 < x < w). The
offset gradient differs exactly at coordinate -1 (vision#6885: torchvision's coordinate weight has
no range test; mmcv gives no gradient to any sample outside the open range). So in every case
torchvision's offset gradient is set to 0 on samples outside mmcv's open range before it is stored
(the `edge` case puts samples exactly at -1, 0, h-1 and h on purpose; offsets on a 2^-10 grid also
hit -1 now and then in the random cases), and the naive mmcv loop, which needs no such patch, is
checked against it here for the small cases. Input, mask and weight gradients agree unpatched.

Offsets are multiples of 2^-10 and small, so base + offset is exact in float32 and float64 alike:
float32 and float64 agree on floor(y) and the bilinear weights, even at kinks.
"""
import sys

import h5py
import numpy as np
import torch
from torchvision.ops import deform_conv2d

torch.manual_seed(1234)
GEN = torch.Generator().manual_seed(1234)
Q = 1024.0  # offsets are multiples of 1/Q


def randn(*shape, scale=1.0):
    return torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale


def quant(t):
    return torch.round(t * Q) / Q


def as_f32(t):
    """Round to float32 and back, so the oracle sees exactly the C test's inputs."""
    return t.to(torch.float32).to(torch.float64)


def out_size(h, k, s, p, d):
    return (h + 2 * p - d * (k - 1) - 1) // s + 1


# ---------------------------------------------------------------------------------------------
# Naive mmcv DCNv2 in float64: explicit loops over (image, output pixel, tap); channels are a
# numpy vector. off (n, 2*k*k, ho, wo), msk (n, k*k, ho, wo). Returns y and all gradients for
# upstream gradient dy.
def naive_dcn(x, off, msk, w, bias, stride, pad, dil, dy):
    x, off, msk, w, dy = (np.asarray(a, dtype=np.float64) for a in (x, off, msk, w, dy))
    n, cin, h, wd = x.shape
    cout, _, k, _ = w.shape
    ho, wo = off.shape[2], off.shape[3]
    y = np.zeros((n, cout, ho, wo))
    gx, goff, gmsk, gw = np.zeros_like(x), np.zeros_like(off), np.zeros_like(msk), np.zeros_like(w)

    def pix(b, yy, xx):
        if 0 <= yy < h and 0 <= xx < wd:
            return x[b, :, yy, xx]
        return np.zeros(cin)

    for b in range(n):
        for oh in range(ho):
            for ow in range(wo):
                for i in range(k):
                    for j in range(k):
                        t = i * k + j
                        sy = oh * stride - pad + i * dil + off[b, 2 * t, oh, ow]
                        sx = ow * stride - pad + j * dil + off[b, 2 * t + 1, oh, ow]
                        m = msk[b, t, oh, ow]
                        dcol = w[:, :, i, j].T @ dy[b, :, oh, ow]  # (cin,)
                        if not (-1 < sy < h and -1 < sx < wd):
                            continue  # value 0, no gradient anywhere (mmcv)
                        y0, x0 = int(np.floor(sy)), int(np.floor(sx))
                        ly, lx = sy - y0, sx - x0
                        hy, hx = 1 - ly, 1 - lx
                        v1, v2 = pix(b, y0, x0), pix(b, y0, x0 + 1)
                        v3, v4 = pix(b, y0 + 1, x0), pix(b, y0 + 1, x0 + 1)
                        val = hy * hx * v1 + hy * lx * v2 + ly * hx * v3 + ly * lx * v4
                        y[b, :, oh, ow] += w[:, :, i, j] @ (m * val)
                        gw[:, :, i, j] += np.outer(dy[b, :, oh, ow], m * val)
                        gmsk[b, t, oh, ow] += dcol @ val
                        goff[b, 2 * t, oh, ow] += m * (dcol @ (hx * (v3 - v1) + lx * (v4 - v2)))
                        goff[b, 2 * t + 1, oh, ow] += m * (dcol @ (hy * (v2 - v1) + ly * (v4 - v3)))
                        for yy, xx, wt in ((y0, x0, hy * hx), (y0, x0 + 1, hy * lx),
                                           (y0 + 1, x0, ly * hx), (y0 + 1, x0 + 1, ly * lx)):
                            if 0 <= yy < h and 0 <= xx < wd:
                                gx[b, :, yy, xx] += m * wt * dcol
    gb = None
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
        gb = dy.sum(axis=(0, 2, 3))
    return y, gx, goff, gmsk, gw, gb


def invalid_samples(off, h, w, k, stride, pad, dil):
    """(n, k*k, ho, wo) bool: samples outside mmcv's open range (-1, h) x (-1, w)."""
    n, _, ho, wo = off.shape
    oh = torch.arange(ho, dtype=torch.float64).view(1, 1, ho, 1)
    ow = torch.arange(wo, dtype=torch.float64).view(1, 1, 1, wo)
    i = (torch.arange(k * k) // k).view(1, k * k, 1, 1).double()
    j = (torch.arange(k * k) % k).view(1, k * k, 1, 1).double()
    sy = oh * stride - pad + i * dil + off[:, 0::2]
    sx = ow * stride - pad + j * dil + off[:, 1::2]
    return ~((sy > -1) & (sy < h) & (sx > -1) & (sx < w))


# Read views of the (n, 81, hl, wl) offset-conv output and (n, 27, hl, wl) sigmoid masks.
def layout_views(om, msig, layout, c0, m0, ho, wo):
    n, _, hl, wl = om.shape
    if layout == 1:
        return om[:, c0:c0 + 18], msig[:, m0:m0 + 9]
    # layout 2: per image, flat memory from the base channel, viewed with the output's strides.
    off = om.reshape(n, -1)[:, c0 * hl * wl:c0 * hl * wl + 18 * ho * wo].reshape(n, 18, ho, wo)
    msk = msig.reshape(n, -1)[:, m0 * hl * wl:m0 * hl * wl + 9 * ho * wo].reshape(n, 9, ho, wo)
    return off, msk


def run_case(f, idx, name, n, cin, h, w, cout, stride=1, pad=1, dil=1, bias=False, off_scale=1.0,
             layout=0, c0=0, m0=0, hl=0, wl=0, edge=False, naive=False):
    k = 3
    ho, wo = out_size(h, k, stride, pad, dil), out_size(w, k, stride, pad, dil)
    x = as_f32(randn(n, cin, h, w))
    wt = as_f32(randn(cout, cin, k, k, scale=1.0 / np.sqrt(cin * k * k)))
    bs = as_f32(randn(cout, scale=0.5)) if bias else None
    dy = as_f32(randn(n, cout, ho, wo))
    if layout == 0:
        if edge:
            # Targets hit -1, 0, h-1, h exactly (and just inside the open range) half the time.
            def targets(size, lim):
                special = torch.tensor([-1.0, 0.0, lim - 1.0, float(lim), -1 + 1 / Q, lim - 1 / Q,
                                        -1 - 1 / Q, lim + 1 / Q], dtype=torch.float64)
                pick = torch.randint(0, len(special), size, generator=GEN)
                rnd = quant(torch.rand(size, generator=GEN, dtype=torch.float64) * (lim + 2) - 1.5)
                use = torch.rand(size, generator=GEN) < 0.5
                return torch.where(use, special[pick], rnd)
            oh = torch.arange(ho, dtype=torch.float64).view(1, 1, ho, 1)
            ow = torch.arange(wo, dtype=torch.float64).view(1, 1, 1, wo)
            i = (torch.arange(k * k) // k).view(1, k * k, 1, 1).double()
            j = (torch.arange(k * k) % k).view(1, k * k, 1, 1).double()
            ty, tx = targets((n, k * k, ho, wo), h), targets((n, k * k, ho, wo), w)
            off = torch.empty(n, 2 * k * k, ho, wo, dtype=torch.float64)
            off[:, 0::2] = ty - (oh * stride - pad + i * dil)
            off[:, 1::2] = tx - (ow * stride - pad + j * dil)
        else:
            off = quant(randn(n, 2 * k * k, ho, wo, scale=off_scale))
        msk = as_f32(torch.sigmoid(randn(n, k * k, ho, wo, scale=2.0)))
        off.requires_grad_(True)
        msk.requires_grad_(True)
        off_v, msk_v = off, msk
        leaves = {"offset": off, "mask": msk}
    else:
        om = quant(randn(n, 81, hl, wl, scale=off_scale))
        msig = as_f32(torch.sigmoid(om[:, 54:81] * 2.0))
        om.requires_grad_(True)
        msig.requires_grad_(True)
        off_v, msk_v = layout_views(om, msig, layout, c0, m0, ho, wo)
        leaves = {"om": om, "msig": msig}
    xg = x.clone().requires_grad_(True)
    wg = wt.clone().requires_grad_(True)
    bg = bs.clone().requires_grad_(True) if bias else None
    offl = off_v.detach().clone().requires_grad_(True)
    mskl = msk_v.detach().clone().requires_grad_(True)
    y = deform_conv2d(xg, offl, wg, bg, stride=(stride, stride), padding=(pad, pad),
                      dilation=(dil, dil), mask=mskl)
    assert y.shape == (n, cout, ho, wo)
    y.backward(dy)
    # mmcv rule: no offset gradient for samples outside the open range (torchvision differs at
    # exactly -1, which multiples of 2^-10 hit now and then even in the random cases).
    goff = offl.grad.clone()
    inv = invalid_samples(offl.detach(), h, w, k, stride, pad, dil)
    goff[:, 0::2][inv] = 0
    goff[:, 1::2][inv] = 0
    # Through the (possibly reinterpreting) views onto the stored tensors.
    torch.autograd.backward([off_v, msk_v], [goff, mskl.grad])

    g = f.create_group(f"case{idx}")
    g.attrs["name"] = name
    meta = [n, cin, h, w, cout, k, stride, pad, dil, int(bias), layout, c0, m0, hl, wl, ho, wo]
    put = lambda key, t: g.create_dataset(key, data=np.asarray(
        t.detach().numpy() if torch.is_tensor(t) else t, dtype=np.float32))
    put("meta", np.array(meta))
    put("x", x)
    put("weight", wt)
    put("dy", dy)
    put("y", y)
    put("dx", xg.grad)
    put("dweight", wg.grad)
    if bias:
        put("bias", bs)
        put("dbias", bg.grad)
    for key, t in leaves.items():
        put(key, t)
        put("d" + key, t.grad)

    if naive:
        ny, ngx, ngoff, ngmsk, ngw, ngb = naive_dcn(x, off_v.detach(), msk_v.detach(), wt, bs,
                                                    stride, pad, dil, dy)
        if layout == 2:  # gradients of the reinterpreted views back onto om / msig
            dom = np.zeros(om.shape)
            dms = np.zeros(msig.shape)
            dom.reshape(n, -1)[:, c0 * hl * wl:c0 * hl * wl + 18 * ho * wo] += ngoff.reshape(n, -1)
            dms.reshape(n, -1)[:, m0 * hl * wl:m0 * hl * wl + 9 * ho * wo] += ngmsk.reshape(n, -1)
            nres = {"dom": dom, "dmsig": dms}
        else:
            assert layout == 0
            nres = {"doffset": ngoff, "dmask": ngmsk}
        nres.update({"y": ny, "dx": ngx, "dweight": ngw})
        if bias:
            nres["dbias"] = ngb
        # Cross-check the two references (float64 both: agreement to rounding).
        for key, val in nres.items():
            ref = g[key][()].astype(np.float64)  # torchvision (float32-rounded)
            tol = 1e-5 * (1 + np.abs(val))
            err = np.abs(ref - val)
            if not (err <= tol).all():
                sys.exit(f"oracle_dcn: case {name}: naive mmcv and torchvision disagree on {key} "
                         f"(max err {err.max():.3g})")
            put("naive/" + key, val)
    return ho, wo


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: oracle_dcn.py OUT.h5")
    torch.set_default_dtype(torch.float64)
    with h5py.File(sys.argv[1], "w") as f:
        cases = [
            dict(name="basic", n=1, cin=3, h=7, w=9, cout=5, bias=True, off_scale=1.5, naive=True),
            dict(name="batch3_stride2", n=3, cin=4, h=9, w=8, cout=6, stride=2, off_scale=2.0),
            dict(name="dil2_large_offsets", n=2, cin=5, h=8, w=11, cout=3, dil=2, bias=True,
                 off_scale=8.0, naive=True),
            dict(name="edge_coordinates", n=1, cin=2, h=5, w=6, cout=3, bias=True, edge=True,
                 naive=True),
            dict(name="wide_c256", n=2, cin=256, h=10, w=12, cout=256, off_scale=2.0),
            # More than one tile of output rows (2048 positions per tile in dcn.c).
            dict(name="multi_tile", n=2, cin=3, h=21, w=130, cout=4, bias=True, off_scale=3.0),
            dict(name="row_wider_than_tile", n=1, cin=2, h=3, w=2100, cout=2, stride=2,
                 off_scale=3.0),
            # DeformFusion: om (2, 81, 6, 7) shared by the three branches of one level.
            dict(name="fusion_mid_slices", n=2, cin=8, h=6, w=7, cout=8, off_scale=1.0, layout=1,
                 c0=0, m0=0, hl=6, wl=7),
            dict(name="fusion_low_stride2", n=2, cin=8, h=11, w=13, cout=8, stride=2,
                 off_scale=1.0, layout=1, c0=18, m0=9, hl=6, wl=7),
            dict(name="fusion_high_reinterpret", n=2, cin=8, h=3, w=4, cout=8, off_scale=1.0,
                 layout=2, c0=36, m0=18, hl=6, wl=7, naive=True),
            dict(name="batch3_reinterpret_s2_d2", n=3, cin=6, h=9, w=10, cout=4, stride=2, dil=2,
                 bias=True, off_scale=5.0, layout=2, c0=36, m0=18, hl=7, wl=9, naive=True),
        ]
        for i, c in enumerate(cases):
            if c.get("layout", 0) == 2:  # the reinterpreted views stay inside om / msig
                ho = out_size(c["h"], 3, c.get("stride", 1), 1, c.get("dil", 1))
                wo = out_size(c["w"], 3, c.get("stride", 1), 1, c.get("dil", 1))
                assert c["c0"] * c["hl"] * c["wl"] + 18 * ho * wo <= 81 * c["hl"] * c["wl"]
                assert c["m0"] * c["hl"] * c["wl"] + 9 * ho * wo <= 27 * c["hl"] * c["wl"]
            if c.get("layout", 0) == 1:
                ho = out_size(c["h"], 3, c.get("stride", 1), 1, c.get("dil", 1))
                wo = out_size(c["w"], 3, c.get("stride", 1), 1, c.get("dil", 1))
                assert (ho, wo) == (c["hl"], c["wl"]), c["name"]
            run_case(f, i, **c)
        f.attrs["cases"] = len(cases)
        f.create_dataset("num_cases", data=np.array([len(cases)], dtype=np.float32))


if __name__ == "__main__":
    main()
