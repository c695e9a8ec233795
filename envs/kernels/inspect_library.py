"""What a built kernel library may do: call math, memory and OpenMP (or CUDA runtime) functions, nothing else.

A kernel runs inside the evaluation process, so native code could reach anything Python can:
``dlsym`` the interpreter's API and rewrite the harness, fork a process that outlives the
evaluation, read files, pin threads, read the clock to tell a timed call from a checked one.
Source checks are easy to dodge (macros, token pasting), so the *built* library is inspected:

* every dynamic symbol it imports (``nm -D --undefined-only``) must be on :data:`ALLOWED_IMPORTS`
  / :data:`ALLOWED_IMPORT_PATTERN` — no ``dlsym``, ``fork``, ``fopen``, ``Py*``, ``std::thread``,
  ``std::chrono`` or ``sched_setaffinity``;
* its machine code (``objdump -d``) must hold no instruction that reaches the kernel or a clock
  without a symbol: ``syscall``, ``sysenter``, ``int 0x80``, ``rdtsc``, ``rdtscp``, ``rdpmc``.

A library that fails either check is rejected with :class:`KernelRejected` (code
``forbidden_import`` or ``forbidden_instruction``) before it is ever loaded.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

ALLOWED_IMPORTS = frozenset(
    {
        "memcpy", "memmove", "memset", "memcmp", "malloc", "calloc", "realloc", "free", "aligned_alloc",
        "posix_memalign", "abort", "__cxa_atexit", "__cxa_finalize", "__gmon_start__", "__stack_chk_fail",
        "__cxa_guard_acquire", "__cxa_guard_release", "__cxa_guard_abort", "__gxx_personality_v0",
        "_Unwind_Resume", "__cxa_begin_catch", "__cxa_end_catch", "__cxa_allocate_exception", "__cxa_throw",
        "__cxa_free_exception", "__cxa_rethrow", "__cxa_pure_virtual", "_ITM_registerTMCloneTable",
        "_ITM_deregisterTMCloneTable", "__errno_location", "_ZSt9terminatev", "__assert_fail",
        "omp_get_num_threads", "omp_get_thread_num", "omp_get_max_threads", "omp_in_parallel",
    }
)  # fmt: skip
_MATH = (
    "exp|exp2|expm1|log|log2|log10|log1p|pow|sqrt|cbrt|sin|cos|tan|asin|acos|atan|atan2|sinh|cosh|tanh|asinh|"
    "acosh|atanh|erf|erfc|tgamma|lgamma|fabs|floor|ceil|round|lround|llround|trunc|fmod|remainder|fmin|fmax|"
    "fma|hypot|ldexp|frexp|nearbyint|rint|lrint|llrint|copysign|sincos|modf|nextafter"
)
ALLOWED_IMPORT_PATTERN = re.compile(
    rf"(?:__)?(?:{_MATH})[fl]?(?:_finite)?"  # libm
    r"|GOMP_\w+"  # OpenMP's runtime entry points (parallel regions, loops, barriers)
    r"|_Znw\w+|_Zna\w+|_Zdl\w+|_Zda\w+"  # operator new / delete
    r"|_ZSt\d+__throw_\w+"  # std::__throw_length_error and friends (vector, string)
    r"|cuda[A-Z]\w*|__cuda\w+"  # the CUDA runtime
)
FORBIDDEN_INSTRUCTIONS = re.compile(r"\t(syscall|sysenter|int\s+\$0x80|rdtscp?|rdpmc)\b")
RULES_FINGERPRINT = hashlib.sha256(
    repr((sorted(ALLOWED_IMPORTS), ALLOWED_IMPORT_PATTERN.pattern, FORBIDDEN_INSTRUCTIONS.pattern)).encode()
).hexdigest()[:16]
"""Part of every build's cache key, so a library built under older rules is inspected again."""


class KernelRejected(RuntimeError):
    """The built library may not be loaded; ``code`` names the rule, ``str()`` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def imported_symbols(library: Path) -> list[str]:
    """The dynamic symbols ``library`` needs from elsewhere, without version suffixes."""
    done = subprocess.run(
        ["nm", "-D", "--undefined-only", str(library)], capture_output=True, text=True, check=True, timeout=60
    )
    return sorted({line.split()[-1].split("@")[0] for line in done.stdout.splitlines() if line.strip()})


def check_library(library: Path, also_allowed: Callable[[list[str]], list[str]] | None = None) -> None:
    """Raise :class:`KernelRejected` if ``library`` imports or executes anything outside the rules.

    ``also_allowed`` returns which of the other imported symbols a caller allows too (libtorch's
    tensor plumbing for ``load_inline`` builds, :mod:`.inline_build`).
    """
    forbidden = [
        symbol
        for symbol in imported_symbols(library)
        if symbol not in ALLOWED_IMPORTS and not ALLOWED_IMPORT_PATTERN.fullmatch(symbol)
    ]
    if forbidden and also_allowed is not None:
        allowed = set(also_allowed(forbidden))
        forbidden = [symbol for symbol in forbidden if symbol not in allowed]
    if forbidden:
        shown = ", ".join(forbidden[:8]) + (" ..." if len(forbidden) > 8 else "")
        raise KernelRejected(
            "forbidden_import",
            f"the kernel library calls {shown}; a kernel may call only math, memory, OpenMP and CUDA runtime functions",
        )
    disassembly = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(library)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found = sorted({match.group(1).split()[0] for match in FORBIDDEN_INSTRUCTIONS.finditer(disassembly)})
    if found:
        raise KernelRejected(
            "forbidden_instruction",
            f"the kernel library executes {', '.join(found)}; system calls and clock reads are not allowed",
        )
