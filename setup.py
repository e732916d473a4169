"""ament_python package icnet_ros (runtime, node, tools) with the icnet_train package."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "icnet_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["icnet_ros", "icnet_ros.*", "icnet_train", "icnet_train.*",
                                    "icnet_bench", "icnet_bench.*"]),
    package_data={"icnet_ros.data": ["*.safetensors"]},  # the demo weights (default_weights_path)
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", [p for p in glob("config/*") if not p.endswith("~")]),
    ],
    # Runtime dependencies come from package.xml (rosdep) or requirements.txt (pip):
    # listing torch here would let pip pull an unpinned build.
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="icnet_ros maintainers",
    maintainer_email="maintainers@icnet-ros.invalid",
    description="ICNet real-time semantic segmentation node for ROS 2",
    license="MIT",
    entry_points={
        "console_scripts": [
            "segmentation_node = icnet_ros.ros.segmentation_node:main",
            "icnet-convert-caffe = icnet_ros.tools.convert_caffe:main",
            "icnet-eval = icnet_ros.tools.evaluate_bag:main",
            "icnet-make-sample-bag = icnet_ros.tools.make_sample_bag:main",
            "icnet-bench = icnet_bench.model_bench:main",
            "icnet-bench-node = icnet_bench.node_bench:main",
            "icnet-train = icnet_train.cli:main",
        ],
    },
)
