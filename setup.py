"""Build of the optional C fast path of the writer; the project's metadata is in pyproject.toml.

``optional=True``: where it cannot be compiled (no compiler, or no OpenSSL headers and
libcrypto for the hash chain: libssl-dev on Debian), the install goes on and the writer uses
its pure-Python path (see ``trek_audit.writer.appender``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "trek_audit.writer._fastappend",
            ["writer/_fastappend.c"],
            depends=["writer/_fastappend.h"],
            libraries=["crypto"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
