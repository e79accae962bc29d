"""The golden VJPs are checked independently of the code that produced them: central finite differences of the
golden value programs (float64), at every smooth case.  Cases at a kink or a tie (their subgradient convention is
a choice, not a derivative) are listed and skipped."""

import numpy as np
import pytest

import refnsm.golden as G
from refnsm.golden._runner import run_program
from refnsm.golden.backend import refnsm_backend

# subgradient conventions (sign(0), ties, clamps) and saturated outputs whose differences are below float64 noise
# (a silent row is the norm's kink at 0 for the cosine-normalised linear kernel)
NONSMOOTH = ("ties", "tied", "equal-rows", "l1-", "sign-t", "bce", "saturated", "p1", "pinf", "pminf", "pm1",
             "silent", "linear-mse-multihot", "zeros-negatives")


def _pairs():
    by = {c.name: c for c in G.cases()}
    out = []
    for c in G.cases():
        fam, fn, var = c.name.split(".", 2)
        if not fn.endswith("_vjp"):
            continue
        v = by.get(f"{fam}.{fn[:-4]}.{var}")
        if v is None or any(s in var for s in NONSMOOTH):
            continue
        out.append(pytest.param(v, c, id=c.name))
    return out


@pytest.mark.parametrize("value_case, vjp_case", _pairs())
def test_vjp_matches_central_differences(value_case, vjp_case):
    be = refnsm_backend("cpu")
    outs = value_case.outputs()
    key = "value" if "value" in outs else ("outputs" if "outputs" in outs else outs[0])
    step = next(st for st in vjp_case.program if st.get("call", "").endswith("_vjp"))
    g = step["args"][0]
    cot = 1.0 if g is None else (g if isinstance(g, float) else vjp_case.inputs[g["input"]])

    def f(inputs):
        return float(np.sum(np.asarray(run_program(value_case, be, "float64", inputs=inputs)[key]) * cot))

    checked = 0
    for out in vjp_case.outputs():
        name = out[2:]
        if name not in value_case.inputs or value_case.inputs[name].dtype.kind != "f":
            continue
        x0 = value_case.inputs[name]
        fd = np.zeros(x0.size)
        h = 1e-6 * max(1.0, float(np.max(np.abs(x0))))
        for i in range(x0.size):
            xp, xm = x0.copy().ravel(), x0.copy().ravel()
            xp[i] += h
            xm[i] -= h
            fd[i] = (f({**value_case.inputs, name: xp.reshape(x0.shape)})
                     - f({**value_case.inputs, name: xm.reshape(x0.shape)})) / (2 * h)
        exp = np.asarray(vjp_case.expected[out]).ravel()
        scale = max(float(np.max(np.abs(exp))), 1e-12)
        assert np.max(np.abs(fd - exp)) <= 1e-5 * scale, (out, np.max(np.abs(fd - exp)) / scale)
        checked += 1
    assert checked


# cases whose value and VJP are method calls of one object (a value step M and an M_vjp step, or forward and
# backward of a structured map): central differences of sum(cotangent * value) over the program up to the value step
METHOD_CASES = ("spiking.TETLoss.base_criterion_loss-saturated-ignore", "linear.SpectralLinear.Umultiply-vjp",
                "linear.SpectralLinear.Vmultiply-vjp", "linear.BoundedNormLinear.5x3-bias-pinf",
                "linear.BoundedNormLinear.5x3-bias-pfro", "linear.BoundedNormLinear.5x3-bias-pnuc",
                # suite 1.4.0 (issue 14); ReLU.forward-backward is left out: it sits at its kink (exact zeros)
                "similarity.Tanh.forward-backward", "similarity.Sigmoid.forward-backward",
                "similarity.Sequential.linear-relu-forward-backward",
                "similarity.Sequential.linear-tanh-forward-backward",
                "similarity.GroupedConv2d.forward-backward-g2-s2p1d1",
                "similarity.GroupedConv2d.forward-backward-g2-s1p1d2",
                "linear.Butterfly.5x3-bias", "linear.Butterfly.5x3-bias-compat-neuromancer",
                "linear.L0Linear.cdf_qz-vjp", "linear.L0Linear.quantile_concrete-vjp",
                "linear.SVDLinear.orthogonal_error-vjp")


#: the similarity encoders' parameter gradients d_<param> and the inputs that hold those parameters
ENCODER_PARAM_INPUTS = {"weight": "w", "bias": "b", "0.weight": "W0", "0.bias": "b0"}


@pytest.mark.parametrize("name", METHOD_CASES)
def test_method_vjps_match_central_differences(name):
    case = next(c for c in G.cases() if c.name == name)
    be = refnsm_backend("cpu")
    steps = case.program
    k_vjp = next(i for i, st in enumerate(steps) if st.get("call", "").endswith("_vjp") or st.get("call") == "backward")
    vjp = steps[k_vjp]
    value_name = "forward" if vjp["call"] == "backward" else vjp["call"][:-4]
    k_val = next(i for i, st in enumerate(steps) if st.get("call") == value_name)
    out_name = next(iter(steps[k_val]["save"]))
    g = vjp["args"][0]
    cot = 1.0 if g is None else case.inputs[g["input"]]
    # the gradients: the VJP step's saves, and the parameters' (a "grads" read after backward)
    grads = dict(vjp["save"])
    for st in steps[k_vjp + 1:]:
        if st.get("get") == "grads":
            grads.update(st["save"])
    value_case = G.Case(**{**case.__dict__, "program": steps[:k_val] + [{**steps[k_val], "save": {out_name: []}}]})

    def f(inputs):
        return float(np.sum(np.asarray(run_program(value_case, be, "float64", inputs=inputs)[out_name]) * cot))

    checked = 0
    for out in grads:
        var = out[2:]
        if case.family == "similarity":
            var = ENCODER_PARAM_INPUTS.get(var, var)
        key = var if var in case.inputs else f"param.{var}"
        if key not in case.inputs or case.inputs[key].dtype.kind != "f" or out not in case.expected:
            continue
        x0 = case.inputs[key]
        h = 1e-6 * max(1.0, float(np.max(np.abs(x0))))
        fd = np.zeros(x0.size)
        for i in range(x0.size):
            xp, xm = x0.copy().ravel(), x0.copy().ravel()
            xp[i] += h
            xm[i] -= h
            fd[i] = (f({**case.inputs, key: xp.reshape(x0.shape)}) - f({**case.inputs, key: xm.reshape(x0.shape)})) / (2 * h)
        exp = np.asarray(case.expected[out]).ravel()
        scale = max(float(np.max(np.abs(exp))), 1e-12)
        assert np.max(np.abs(fd - exp)) <= 1e-5 * scale, (out, np.max(np.abs(fd - exp)) / scale)
        checked += 1
    # every gradient the case saves for a float input or parameter was checked (x_seq; x and the reflectors; x and
    # the weight and bias)
    # (the elementwise encoders have no parameters: x alone; L0Linear's gate methods: x and qz_loga; orthogonal_error:
    # its matrix)
    n_expected = (1 if name.split(".")[1] in ("Tanh", "Sigmoid") or "orthogonal_error" in name else
                  2 if "multiply" in name or name.startswith("linear.L0Linear.") else 3)
    assert checked == {"spiking": 1}.get(case.family, n_expected), checked


def test_eig_vjp_matches_central_differences():
    """linear.eig_vjp.eigenvalues-real-separated: the cotangent is the eigenvalues, so d_W is the gradient of
    L = 1/2 sum lambda_i^2 with respect to eig_vjp's matrix (the map's effective_W); central differences there."""
    case = next(c for c in G.cases() if c.name == "linear.eig_vjp.eigenvalues-real-separated")
    be = refnsm_backend("cpu")
    E0 = be.linear.Linear(4, 4, bias=False, params={"weight": case.inputs["W"]}).effective_W()

    def f(E):
        lam = np.linalg.eigvals(E)
        return 0.5 * float(np.sum(lam.real ** 2 - lam.imag ** 2))

    h = 1e-6 * max(1.0, float(np.max(np.abs(E0))))
    fd = np.zeros(E0.size)
    for i in range(E0.size):
        ep, em = E0.copy().ravel(), E0.copy().ravel()
        ep[i] += h
        em[i] -= h
        fd[i] = (f(ep.reshape(E0.shape)) - f(em.reshape(E0.shape))) / (2 * h)
    exp = np.asarray(case.expected["d_W"]).ravel()
    scale = float(np.max(np.abs(exp)))
    assert np.max(np.abs(fd - exp)) <= 1e-5 * scale
