"""Build of the optional C kernels (deltaprop._ckernels); everything else is declared in pyproject.toml.

The extension is optional: where no C compiler is at hand, pip installs deltaprop without it and the same
computations run in NumPy (deltaprop.native chooses).
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "deltaprop._ckernels",
            sources=["src/deltaprop/_ckernels.c"],
            depends=["src/deltaprop/_sgd_step.h", "src/deltaprop/_team.h"],  # included by _ckernels.c
            # -O3: the loops vectorise (sqrt too, as errno is not set); no fused multiply-add: NumPy's rounding
            extra_compile_args=[] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-fno-math-errno"],
            optional=True,
        )
    ]
)
