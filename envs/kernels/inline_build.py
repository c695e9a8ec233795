"""Build and bind KernelBench's ``load_inline`` submissions fast, under the same rules as ``load_kernel``.

A candidate's ``from torch.utils.cpp_extension import load_inline`` is answered by this module
in the candidate's process (:mod:`horizongym.envs.kernels.worker` redirects that one import), so
torch's own builder never runs. :func:`load_inline` takes torch's arguments and:

1. checks what it really receives with :func:`~horizongym.envs.kernels.inline_source.check_inline`
   (compute ops in the C++, flags), as the static checker did with what it read;
2. builds one translation unit: our prelude header (``torch/types.h``: tensors, allocation,
   ``TORCH_CHECK``; ``<torch/extension.h>`` and ``<torch/torch.h>`` in the sources resolve to it),
   the candidate's ``cpp_sources``, and a generated binding. The prelude is precompiled once per
   machine (a g++ ``.gch`` in the cache, ~20 s, built at most once however many processes ask), so
   a kernel then builds in ~2-3 s instead of the ~30 s of torch's ``load_inline`` (which parses
   ``torch/extension.h`` and pybind11 for every kernel). Builds are cached by a hash of the unit,
   the flags and the torch version, failures included, like :func:`.api.build`;
3. binds the functions without pybind11 or the Python C API: for each name in ``functions`` the
   binding exports ``extern "C" int hg_call_NAME(const Arg*, int64_t, void** out, char* error, int64_t)``,
   which converts each argument to the C++ parameter's type (a tensor travels as its ``TensorImpl*``,
   taken from ``torch._C._tensor_impl_raw_handle``; ``int`` / ``float`` / ``bool`` by value), calls the
   function, catches ``c10::Error`` / ``std::exception`` into ``error``, and hands a returned tensor's
   ``TensorImpl*`` back (wrapped by ``torch._C._wrap_tensor_impl``, then released). A function may return
   ``torch::Tensor`` or ``void``;
4. inspects the built library before it is loaded: besides what :mod:`.inspect_library` allows, it
   may import libtorch's tensor plumbing (:func:`allowed_torch_symbol`: ``c10::`` and
   ``at::TensorBase`` accessors, threads, error reporting) and the dispatcher entry points of
   allocation and layout operators only (``at::_ops::empty_like::call`` yes, ``at::_ops::relu::call``
   or any ``redispatch`` no). So ``x.relu()`` or ``a + b`` in C++ (inline functions that call
   ``at::_ops``) is rejected as ``torch_op`` before the library runs, and the runtime operator guard
   sees any compute op dispatched anyway.

``cuda_sources`` (the ``cuda`` and ``compile-only`` backends) are built like torch builds them, in
two units: ``nvcc -c`` compiles the CUDA sources on a lighter prelude (:data:`CUDA_PRELUDE_TEXT`:
``at::Tensor`` and the allocation ops, without ``ATen/ATen.h``, whose every-operator header costs
nvcc half a minute), g++ compiles ``cpp_sources`` (declarations) and the binding on the precompiled
prelude, and g++ links both with ``libcudart``. torch's CPU wheel ships ``ATen/cuda`` and ``c10/cuda``
headers without their generated config header or libraries, so sources that include them (streams,
``CUDAContext.h``) cannot be built with such a torch: the error says so in one line; kernels launch
on the default stream instead.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from horizongym.cache import build_atomically, cache_dir
from horizongym.envs.kernels import api
from horizongym.envs.kernels.inline_source import EXTENSION_MODULE, InlineCall, check_inline, read_call
from horizongym.envs.kernels.inspect_library import RULES_FINGERPRINT, KernelRejected, check_library

__all__ = ["EXTENSION_MODULE", "InlineExtension", "build_inline", "load", "load_inline"]

PRELUDE = "hg_torch_prelude.h"
PRELUDE_TEXT = """#ifndef HG_TORCH_PRELUDE
#define HG_TORCH_PRELUDE
#include <torch/types.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>
#endif
"""
PRELUDE_SECONDS = "build-seconds.txt"
"""The file in the prelude folder that records how long its precompilation took."""
CUDA_PRELUDE = "hg_torch_cuda_prelude.h"
CUDA_PRELUDE_TEXT = """#ifndef HG_TORCH_CUDA_PRELUDE
#define HG_TORCH_CUDA_PRELUDE
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/empty_strided.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/full.h>
#include <ATen/ops/full_like.h>
#include <c10/util/Exception.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
namespace torch { using namespace at; }
#endif
"""
"""What a ``cuda_sources`` unit is compiled on: tensors, allocation, ``TORCH_CHECK``, the CUDA runtime."""
SHIMMED_HEADERS = ("torch/extension.h", "torch/torch.h", "torch/all.h")
"""Headers a candidate includes that resolve to the prelude (no pybind11, no nn modules)."""
ALLOWED_TORCH_OPS = frozenset(
    {
        "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
        "new_zeros", "ones", "ones_like", "full", "full_like", "zero_", "fill_", "view", "_unsafe_view", "reshape",
        "_reshape_alias", "as_strided", "t", "transpose", "permute", "expand", "unsqueeze", "squeeze", "flatten",
        "contiguous", "clone", "copy_", "_to_copy", "to", "detach", "alias", "slice", "select", "narrow", "resize_",
        "view_as", "expand_as",
    }
)  # fmt: skip
"""Aten operators whose ``at::_ops::NAME[_OVERLOAD]::call`` a built library may import (allocation, layout)."""
BINDING = r"""
namespace hg_bind {
struct Arg { int64_t kind; int64_t integer; double real; void* impl; };
enum Kind : int64_t { TENSOR = 0, INT = 1, FLOAT = 2, BOOL = 3 };
struct BadArgument : std::runtime_error { using std::runtime_error::runtime_error; };
template <class T, class = void> struct From {
  static_assert(sizeof(T) == 0, "load_inline functions may take torch::Tensor, integers, floating point or bool");
};
template <> struct From<at::Tensor> {
  static at::Tensor get(const Arg& a, size_t i) {
    if (a.kind != TENSOR) throw BadArgument("argument " + std::to_string(i) + " must be a tensor");
    return at::Tensor(c10::intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>::unsafe_reclaim_from_nonowning(
        static_cast<c10::TensorImpl*>(a.impl)));
  }
};
template <> struct From<bool> {
  static bool get(const Arg& a, size_t i) {
    if (a.kind != BOOL && a.kind != INT) throw BadArgument("argument " + std::to_string(i) + " must be a bool");
    return a.integer != 0;
  }
};
template <class T> struct From<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static T get(const Arg& a, size_t i) {
    if (a.kind != INT && a.kind != BOOL) throw BadArgument("argument " + std::to_string(i) + " must be an int");
    return static_cast<T>(a.integer);
  }
};
template <class T> struct From<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static T get(const Arg& a, size_t i) {
    if (a.kind == FLOAT) return static_cast<T>(a.real);
    if (a.kind == INT) return static_cast<T>(a.integer);
    throw BadArgument("argument " + std::to_string(i) + " must be a float");
  }
};
template <class R, class... A, size_t... I>
void* invoke(R (*f)(A...), const Arg* args, std::index_sequence<I...>) {
  if constexpr (std::is_void_v<R>) {
    f(From<std::decay_t<A>>::get(args[I], I)...);
    return nullptr;
  } else {
    static_assert(std::is_same_v<std::decay_t<R>, at::Tensor>,
                  "load_inline functions must return torch::Tensor or void");
    at::Tensor result = f(From<std::decay_t<A>>::get(args[I], I)...);
    return result.unsafeReleaseTensorImpl();
  }
}
template <class R, class... A>
int call(R (*f)(A...), const Arg* args, int64_t n, void** out, char* error, int64_t capacity) {
  std::string message;
  try {
    if (n != static_cast<int64_t>(sizeof...(A)))
      throw BadArgument("takes " + std::to_string(sizeof...(A)) + " arguments, got " + std::to_string(n));
    *out = invoke(f, args, std::index_sequence_for<A...>{});
    return 0;
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  } catch (const std::exception& e) {
    message = e.what();
  }
  size_t size = std::min(message.size(), static_cast<size_t>(capacity - 1));
  std::memcpy(error, message.data(), size);
  error[size] = 0;
  return 1;
}
}  // namespace hg_bind
extern "C" void hg_release(void* impl) { c10::raw::intrusive_ptr::decref(static_cast<c10::TensorImpl*>(impl)); }
"""
_FORBIDDEN_STD = ("thread", "chrono", "filesystem", "fstream", "filebuf", "random_device", "cout", "cerr", "clog")
_FORBIDDEN_C10 = ("c10::Dispatcher", "c10::OperatorHandle", "c10::impl::OperatorEntry", "c10::BoxedKernel")


class _Arg(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int64), ("integer", ctypes.c_int64), ("real", ctypes.c_double), ("impl", ctypes.c_void_p),
    ]  # fmt: skip


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype, _capsule_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype, _capsule_new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def _torch_paths() -> tuple[list[str], str, int]:
    """Torch's include folders, its library folder, and the C++ ABI it was built with."""
    import torch
    from torch.utils import cpp_extension

    return cpp_extension.include_paths(), cpp_extension.library_paths()[0], int(torch._C._GLIBCXX_USE_CXX11_ABI)


@functools.cache
def base_flags() -> tuple[str, ...]:
    """The flags every inline unit (and the prelude) is compiled with."""
    includes, _, abi = _torch_paths()
    flags = ["-O3", "-march=native", "-fopenmp", "-std=c++17", "-fPIC", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]
    return (*flags, *(f"-I{path}" for path in includes))


def _fingerprint() -> str:
    import torch

    return json.dumps([api.toolchain("cpp").fingerprint(), torch.__version__, list(base_flags())])


def prelude_folder() -> Path:
    """The folder of the precompiled prelude and the shimmed headers (built once, ~20 s)."""
    key = hashlib.sha256(("prelude\0" + PRELUDE_SECONDS + _fingerprint() + PRELUDE_TEXT).encode()).hexdigest()[:32]
    folder = cache_dir() / "kernels-inline" / f"prelude-{key}"
    if folder.exists():
        return folder

    def compile_into(tmp: Path) -> None:
        (tmp / PRELUDE).write_text(PRELUDE_TEXT)
        for header in SHIMMED_HEADERS:
            (tmp / header).parent.mkdir(parents=True, exist_ok=True)
            (tmp / header).write_text(f'#include "{PRELUDE}"\n')
        compiler = shutil.which(api.compiler_of("cpp")) or api.compiler_of("cpp")
        command = [compiler, *base_flags(), "-x", "c++-header", PRELUDE, "-o", f"{PRELUDE}.gch"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise api.CompileError("the torch prelude header did not build:\n" + (done.stdout + done.stderr)[-2000:])
        (tmp / PRELUDE_SECONDS).write_text(f"{time.perf_counter() - started:.3f}\n")

    return build_atomically(folder, compile_into)


def translation_unit(call: InlineCall) -> str:
    """The one C++ file built for ``call``: prelude, the candidate's sources, the binding."""
    wrappers = "".join(
        f'extern "C" int hg_call_{name}(const hg_bind::Arg* a, int64_t n, void** out, char* e, int64_t c) '
        f"{{ return hg_bind::call(&{name}, a, n, out, e, c); }}\n"
        for name in call.functions
    )
    sources = "\n".join(call.cpp_sources)
    return f'#include "{PRELUDE}"\n#line 1 "cpp_sources"\n{sources}\n#line 1 "binding"\n{BINDING}{wrappers}'


@functools.cache
def _allowed_op_structs() -> frozenset[str]:
    """``at::_ops`` struct names of :data:`ALLOWED_TORCH_OPS`' overloads (``empty_memory_format``, ``view``, ...)."""
    import torch

    names: set[str] = set()
    for op in ALLOWED_TORCH_OPS:
        packet = getattr(torch.ops.aten, op, None)
        for overload in packet.overloads() if packet is not None else ():
            names.add(op if overload == "default" else f"{op}_{overload}")
    return frozenset(names)


def allowed_torch_symbol(demangled: str) -> bool:
    """Whether a library built from ``load_inline`` sources may import ``demangled`` (see the module doc)."""
    for prefix in ("vtable for ", "VTT for ", "typeinfo for ", "typeinfo name for "):
        if demangled.startswith(prefix):
            demangled = demangled[len(prefix) :]
            return demangled.startswith(("std::", "__cxxabiv1::", "c10::", "torch::autograd::AutogradMeta"))
    if demangled in ("strlen", "__libc_single_threaded"):  # std::string and shared_ptr plumbing in libtorch's headers
        return True
    if demangled.startswith("at::_ops::"):
        struct, _, member = demangled[len("at::_ops::") :].partition("::")
        return member.startswith("call(") and struct in _allowed_op_structs()
    if demangled.startswith("std::") or " std::" in demangled.split("(")[0]:
        return not any(word in demangled for word in _FORBIDDEN_STD)
    head = demangled.split("(")[0].split(" ")[-1]  # drop a return type ("float* at::TensorBase::data_ptr<float>")
    if head.startswith("c10::"):
        return not head.startswith(_FORBIDDEN_C10)
    return head.startswith(
        (
            "caffe2::TypeMeta::", "at::TensorBase::", "at::internal::", "at::get_num_threads", "at::get_thread_num",
            "at::in_parallel_region", "at::init_num_threads", "at::TensorMaker::", "torch::autograd::AutogradMeta",
            "operator new", "operator delete", "at::detail::empty_cpu",
        )
    )  # fmt: skip


def _demangled_allowed(symbols: list[str]) -> list[str]:
    """The symbols of ``symbols`` (mangled) that :func:`allowed_torch_symbol` allows."""
    if not symbols:
        return []
    done = subprocess.run(["c++filt"], input="\n".join(symbols), capture_output=True, text=True, check=True)
    names = done.stdout.splitlines()
    return [symbol for symbol, name in zip(symbols, names, strict=True) if allowed_torch_symbol(name)]


def cuda_prelude_folder() -> Path:
    """The folder of :data:`CUDA_PRELUDE_TEXT` and the shimmed headers ``cuda_sources`` include (no build)."""
    key = hashlib.sha256(("cuda-prelude\0" + CUDA_PRELUDE_TEXT).encode()).hexdigest()[:32]
    folder = cache_dir() / "kernels-inline" / f"cuda-prelude-{key}"
    if folder.exists():
        return folder

    def write_into(tmp: Path) -> None:
        (tmp / CUDA_PRELUDE).write_text(CUDA_PRELUDE_TEXT)
        for header in SHIMMED_HEADERS:
            (tmp / header).parent.mkdir(parents=True, exist_ok=True)
            (tmp / header).write_text(f'#include "{CUDA_PRELUDE}"\n')

    return build_atomically(folder, write_into)


INCOMPLETE_CUDA_HEADERS = "cuda_cmake_macros.h"
"""The generated header torch's CPU wheel lacks: its ``c10/cuda`` and ``ATen/cuda`` headers cannot be used."""


def cuda_unit(call: InlineCall) -> str:
    """The ``.cu`` file built for ``call``'s ``cuda_sources``: the CUDA prelude, then the sources."""
    return f'#include "{CUDA_PRELUDE}"\n#line 1 "cuda_sources"\n' + "\n".join(call.cuda_sources) + "\n"


def _run_compiler(command: list[str], cwd: str, timeout_s: float) -> tuple[str, bool]:
    """Run one compiler command: its output and whether it succeeded (a timeout is a failure that says so)."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"{Path(command[0]).name} did not finish within {timeout_s:g} s", False
    return done.stdout + done.stderr, done.returncode == 0


def _cuda_error(output: str, source: str) -> str:
    """nvcc's trimmed output for ``cuda_sources``, led by one plain line when torch's CUDA headers are incomplete."""
    import torch

    text = api.trim_compiler_output(output, source, "cuda_sources.cu")
    if INCOMPLETE_CUDA_HEADERS in output:
        text = (
            f"load_inline: this torch ({torch.__version__}) has no complete CUDA headers or libraries, so sources "
            "that include c10/cuda or ATen/cuda (streams, CUDAContext.h) cannot be built with it; launch kernels on "
            "the default stream (<<<blocks, threads>>>) and include only <torch/extension.h> and <cuda_runtime.h>\n"
            + text
        )
    return text


def build_inline(call: InlineCall, *, timeout_s: float = api.COMPILE_TIMEOUT_S) -> api.BuildResult:
    """Compile ``call``'s unit into a checked shared library, or take it from the cache (see the module doc)."""
    started = time.perf_counter()
    cuda = bool(call.cuda_sources)
    if cuda and api.default_language() != "cuda":
        raise api.CompileError(
            "load_inline: cuda_sources need the cuda backend (or compile-only); on the cpu backend put C++ in "
            "cpp_sources"
        )
    folder_of_prelude = prelude_folder()
    folder_of_cuda_prelude = cuda_prelude_folder() if cuda else None
    unit = translation_unit(call)
    flags = [flag for flag in (*call.extra_cflags,) if flag.strip()]
    cuda_flags = [part for flag in call.extra_cuda_cflags for part in flag.split()]
    rules = RULES_FINGERPRINT + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()  # this module's rules too
    key_parts = [_fingerprint(), rules, *flags, unit]
    if cuda:
        key_parts += [api.toolchain("cuda").fingerprint(), api.cuda_arch(), *cuda_flags, cuda_unit(call)]
    key_text = "\0".join(key_parts)
    root = cache_dir() / "kernels-inline"
    folder = root / hashlib.sha256(key_text.encode()).hexdigest()[:32]
    cached = folder.exists()
    if not cached:
        includes, library_folder, abi = _torch_paths()
        compiler = shutil.which(api.compiler_of("cpp")) or api.compiler_of("cpp")
        nvcc = shutil.which(api.compiler_of("cuda")) or api.compiler_of("cuda")
        torch_libraries = [f"-L{library_folder}", "-lc10", "-ltorch_cpu"]

        def compile_into(tmp: Path) -> None:
            with tempfile.TemporaryDirectory(prefix="hg-inline-") as work:
                source = Path(work) / "unit.cpp"
                source.write_text(unit)
                library = Path(work) / "lib.so"
                base = [compiler, f"-I{folder_of_prelude}", *base_flags(), *flags]
                if not cuda:
                    steps = [[*base, "-shared", str(source), "-o", str(library), *torch_libraries,
                              f"-Wl,-rpath,{library_folder}"]]  # fmt: skip
                else:
                    cuda_source = Path(work) / "unit.cu"
                    cuda_source.write_text(cuda_unit(call))
                    steps = [
                        [nvcc, "-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-w", f"-arch={api.cuda_arch()}",
                         f"-D_GLIBCXX_USE_CXX11_ABI={abi}", f"-I{folder_of_cuda_prelude}",
                         *(f"-I{path}" for path in includes), *cuda_flags, "-c", str(cuda_source), "-o", "cuda.o"],
                        [*base, "-c", str(source), "-o", "main.o"],
                        [nvcc, "-shared", "-cudart", "shared", f"-arch={api.cuda_arch()}", "main.o", "cuda.o",
                         "-o", str(library), *torch_libraries, "-Xlinker", f"-rpath={library_folder}",
                         "-Xcompiler", "-fopenmp"],
                    ]  # fmt: skip
                output, ok = "", True
                with api._build_slot(root):
                    for step in steps:
                        output, ok = _run_compiler(step, work, timeout_s)
                        if not ok:
                            break
                if not ok:
                    if cuda and step is steps[0]:
                        text = _cuda_error(output, str(Path(work) / "unit.cu"))
                    else:
                        text = api.trim_compiler_output(output, str(source), "inline.cpp")
                    if "binding:" in text and "not declared" in text:
                        names = ", ".join(call.functions)
                        where = "cpp_sources does not declare" if cuda else "cpp_sources does not define"
                        text = f"load_inline: functions=[{names}] names a function {where}\n{text}"
                    (tmp / "error.txt").write_text(text or "build failed")
                    return
                try:
                    check_library(library, also_allowed=_demangled_allowed)
                except KernelRejected as rejected:
                    (tmp / "rejected.json").write_text(json.dumps(_named(rejected)))
                    return
                shutil.move(str(library), tmp / "lib.so")

        root.mkdir(parents=True, exist_ok=True)
        build_atomically(folder, compile_into)
    if (folder / "error.txt").exists():
        raise api.CompileError((folder / "error.txt").read_text())
    if (folder / "rejected.json").exists():
        code, detail = json.loads((folder / "rejected.json").read_text())
        raise KernelRejected(code, detail)
    return api.BuildResult(folder / "lib.so", cached, time.perf_counter() - started)


def _named(rejected: KernelRejected) -> list[str]:
    """A rejection as (code, detail), with PyTorch ops the library calls named as ``torch_op``."""
    ops = sorted(set(re.findall(r"_ZN2at4_ops\d+(\w+?)\d+callE", str(rejected))))
    if rejected.code == "forbidden_import" and ops:
        shown = ", ".join(f"at::_ops::{op}" for op in ops[:5])
        return ["torch_op", f"the C++ calls PyTorch compute ops ({shown}); a load_inline kernel may allocate "
                "tensors and read their data, not call PyTorch to compute"]  # fmt: skip
    return [rejected.code, str(rejected)]


class InlineFunction:
    """One bound function: converts tensors / int / float / bool to :class:`_Arg` and returns its tensor."""

    def __init__(self, name: str, library: ctypes.CDLL) -> None:
        self.name = name
        self._function = getattr(library, f"hg_call_{name}")
        self._function.restype = ctypes.c_int
        self._release = library.hg_release
        self._release.argtypes, self._release.restype = [ctypes.c_void_p], None

    def _convert(self, position: int, value: Any) -> _Arg:
        import torch

        if isinstance(value, bool):
            return _Arg(3, int(value), 0.0, None)
        if isinstance(value, int):
            return _Arg(1, value, 0.0, None)
        if isinstance(value, float):
            return _Arg(2, 0, value, None)
        if isinstance(value, torch.Tensor):
            wanted = "cuda" if api.default_language() == "cuda" else "cpu"
            if value.device.type != wanted:
                where = value.device.type
                raise ValueError(f"{self.name}: argument {position} is on {where}; the kernel needs {wanted}")
            return _Arg(0, 0, 0.0, _capsule_pointer(torch._C._tensor_impl_raw_handle(value), None))  # type: ignore[attr-defined]
        kind = type(value).__name__
        raise TypeError(f"{self.name}: argument {position} is a {kind}; pass tensors, int, float or bool")

    def __call__(self, *args: Any) -> Any:
        import torch

        converted = (_Arg * max(len(args), 1))(*(self._convert(i, v) for i, v in enumerate(args)))
        out, error = ctypes.c_void_p(), ctypes.create_string_buffer(2048)
        failed = self._function(converted, ctypes.c_int64(len(args)), ctypes.byref(out), error, ctypes.c_int64(2048))
        api.record_launch()
        if failed:
            raise RuntimeError(f"{self.name}: {error.value.decode(errors='replace')}")
        if out.value is None:
            return None
        tensor = torch._C._wrap_tensor_impl(_capsule_new(out.value, None, None))  # type: ignore[attr-defined]
        self._release(out.value)  # the wrapper holds its own reference now
        return tensor


class InlineExtension:
    """What ``load_inline`` returns: attribute access gives the bound ``functions``."""

    def __init__(self, path: Path, call: InlineCall) -> None:
        self.path, self.call = path, call
        self._library = ctypes.CDLL(str(path))
        self._functions = {name: InlineFunction(name, self._library) for name in call.functions}

    def __getattr__(self, name: str) -> InlineFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._functions:
            raise AttributeError(f"the extension binds no function {name!r}; list it in load_inline(functions=[...])")
        return self._functions[name]


def load_inline(name: str, cpp_sources: Any, cuda_sources: Any = None, functions: Any = None, **options: Any) -> Any:
    """Torch's ``load_inline`` signature, built and bound by this module (see the module docstring)."""
    arguments = {"name": name, "cpp_sources": cpp_sources, "cuda_sources": cuda_sources, "functions": functions}
    arguments.update(options)
    try:
        call = read_call(0, arguments)
    except ValueError as error:
        raise api.CompileError(f"load_inline: {error}") from None
    violations = check_inline(call)
    if violations:
        raise KernelRejected(violations[0].code, violations[0].detail)
    if not call.cpp_sources and not call.cuda_sources:
        raise api.CompileError("load_inline: cpp_sources is empty")
    return InlineExtension(build_inline(call).path, call)


def load(name: str, sources: Any, **options: Any) -> Any:
    """Torch's file-based ``load``: a one-file submission has no source files, so it cannot be built."""
    raise api.CompileError("load(sources=[paths]) needs files a submission does not have; use load_inline(...)")
