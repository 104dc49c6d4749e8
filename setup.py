"""Packaging for the AWS data collector for Devo."""

from setuptools import find_packages, setup

# Exact versions live in constraints.txt (pip install -c constraints.txt), so a
# fresh install today and next month resolve the same way; here we keep ranges.
setup(
    name="awscollector",
    version="0.1.0",
    description="AWS data collector for the Devo platform, built on Apache Beam",
    packages=find_packages(include=["awscollector", "awscollector.*"]),
    package_data={"awscollector.flink": ["pom.xml"]},
    python_requires=">=3.11",
    install_requires=[
        "apache-beam==2.77.0",
        "boto3>=1.40,<2",
        "devo-sdk==7.0.2",
        "fastavro>=1.9,<2",
        "pyarrow>=15",
        "pydantic>=2.7,<3",
        "PyYAML>=6,<7",
        "cryptography>=42",
        "zstandard>=0.22",
        # ISA-L gunzip, about twice zlib's speed; zlib is used where it is missing
        "isal>=1.6,<2",
        # imported only when used: the progress line (a terminal) and --metrics-port
        "tqdm>=4.66,<5",
        "prometheus-client>=0.20,<1",
    ],
    # moto (and its Flask server) is the embedded AWS of `aws-collector demo` and of
    # the tests; a production install leaves it out.
    extras_require={
        "demo": ["moto[server]==5.2.5"],
        "test": ["pytest>=8", "ruff>=0.6", "moto[server]==5.2.5"],
    },
    entry_points={"console_scripts": ["aws-collector=awscollector.cli:main"]},
)
