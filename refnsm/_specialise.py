"""A choice between two compiled functions by the dtype of an argument, made when a call is compiled.

Numba compiles every branch of a kernel for every signature it is called with, including a branch that a test of
the dtype (``if W.itemsize == 4:``) never takes for that signature: the test is a run-time value to Numba, not a
type.  The float32 paths that avoid subnormal arithmetic (the lifted products of ``refnsm._bits32``'s users) were
therefore typed, lowered and optimised in every float64 signature too, where they never run: about 40% of the
Hopfield family's float64 first call with an empty cache (``benchmarks/bench_cold_start.py`` times that call).

``float32_variant(f32, arg)`` decorates an ``@njit`` function ``f`` and returns a function that compiled code calls
like ``f``.  Numba's ``overload`` resolves each call when it types it: a float32 array in position ``arg`` selects
``f32``, any other type ``f``, and only the selected function is compiled into the caller.  The result is that of a
run-time test of the dtype; only the compiled code differs.  Called from Python, the function makes the same choice
at run time.
"""

import numpy as np
from numba.core import types
from numba.extending import overload


def float32_variant(f32, arg=0):
    """Decorator: ``@float32_variant(f32, arg)`` over the ``@njit`` function ``f`` gives a function that runs
    ``f32(*args)`` when ``args[arg]`` is a float32 array and ``f(*args)`` otherwise.

    ``f32`` is an ``@njit`` function with ``f``'s parameters and compiler options.  From compiled code the choice is
    made by type when the call is compiled, and the selected function's source is compiled as the call's
    implementation, with that function's options, into the caller (so a caller's signature holds the code of one of
    the two only, and no forwarding layer); from Python it is made by ``args[arg].dtype`` at run time and runs the
    dispatcher.  The returned function has ``f``'s name and docstring, and the two dispatchers as its attributes
    ``float32`` and ``other``; each of those is marked ``compiled_in_callers`` (``refnsm._warmup.unreached`` checks
    their callers instead of them).
    """

    def wrap(f):
        def chosen(*args):
            return (f32 if np.asarray(args[arg]).dtype == np.float32 else f)(*args)

        def _typed(*args):
            a = args[arg]
            return (f32 if isinstance(a, types.Array) and a.dtype == types.float32 else f).py_func

        # Numba requires the typing function to have the implementation's parameters
        _typed.__wrapped__ = f.py_func
        options = {k: v for k, v in f.targetoptions.items() if k != "nopython" and v is not None}
        if options != {k: v for k, v in f32.targetoptions.items() if k != "nopython" and v is not None}:
            raise ValueError(f"float32_variant: {f32.__name__} and {f.__name__} need the same compiler options")
        overload(chosen, jit_options=options)(_typed)
        chosen.__name__, chosen.__qualname__, chosen.__module__ = f.__name__, f.__qualname__, f.__module__
        chosen.__doc__ = f.__doc__
        chosen.float32, chosen.other = f32, f
        f32.compiled_in_callers = f.compiled_in_callers = True
        return chosen

    return wrap
