"""What the agent reads after a submission: verdict, compiler errors, mismatches, timing table."""

from __future__ import annotations

from horizongym.envs.kernels.evaluator import EvalResult

VERDICTS = {
    "correct": "CORRECT",
    "incorrect": "INCORRECT: the output does not match the reference",
    "hack": "REJECTED: the submission breaks the rules and scores 0",
    "compile_error": "BUILD FAILED",
    "error": "ERROR",
    "timeout": "TIMEOUT",
    "compiled": "BUILT (compile-only backend: the kernel cannot run on this machine, so only the build is checked)",
}


def timing_table(result: EvalResult, threads: int) -> str:
    """A markdown table of median times and speedups."""
    timing = result.timing
    if timing is None:
        return ""
    rows = [
        "| contender | median ms | speedup of yours |",
        "|---|---|---|",
        f"| PyTorch eager (reference) | {timing.reference_ms:.4f} | {timing.speedup:.2f}x |",
    ]
    if timing.torch_compile_ms is not None:
        rows.append(
            f"| torch.compile | {timing.torch_compile_ms:.4f} | {timing.torch_compile_ms / timing.candidate_ms:.2f}x |"
        )
    rows.append(f"| your kernel | {timing.candidate_ms:.4f} | |")
    where = f"{result.backend}, {threads} thread{'s' if threads != 1 else ''}"
    return f"Timing (median of {timing.trials} trials, {where}):\n" + "\n".join(rows)


def describe(result: EvalResult, components: dict[str, float], *, threads: int, turns_left: int) -> str:
    """The observation for one evaluated submission."""
    parts = [f"Result: {VERDICTS[result.status]}"]
    if result.violations:
        parts.append("Rule violations:\n" + "\n".join(f"- {v}" for v in result.violations[:6]))
    if result.status == "compile_error":
        parts.append("Compiler output:\n" + result.message)
    elif result.message and result.status != "compiled":
        parts.append(result.message)
    if result.status == "incorrect" and result.max_abs_error is not None:
        parts.append(f"Largest absolute error over all checks: {result.max_abs_error:.4g}")
    table = timing_table(result, threads)
    if table:
        parts.append(table)
    if result.suspicious:
        parts.append("Note: a speedup above 10x was re-checked on fresh inputs.")
    reward = " + ".join(f"{name} {value:g}" for name, value in components.items())
    parts.append(f"Reward this turn: {reward} = {sum(components.values()):g}")
    if turns_left > 0:
        parts.append(f"You have {turns_left} more submission{'s' if turns_left != 1 else ''}; improve and resubmit.")
    return "\n\n".join(parts)
