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
    # What the node and the user tools import at run time (requirements.txt; package.xml lists
    # them by rosdep key). ROS 2 itself is not here: it comes from the system or
    # requirements-ros.txt. Nor is torch: a bare "torch" would pull whichever build the index
    # serves first (CUDA on Linux x86-64), unpinned. Install the build you want first
    # (docs/setup.md); without one, `import icnet_ros` says how in one line.
    # onnx, onnxruntime, onnxscript: the engine's default CPU backend (cpu_backend auto).
    install_requires=["numpy", "opencv-python-headless", "safetensors", "pyyaml", "rosbags", "tqdm",
                      "matplotlib", "onnx", "onnxruntime", "onnxscript"],
    extras_require={
        "train": ["tensorboard", "cityscapesscripts"],
        "bench": ["psutil"],
        "test": ["pytest", "pytest-timeout", "pytest-xdist", "psutil", "packaging"],
    },
    zip_safe=True,
    maintainer="icnet_ros maintainers",
    maintainer_email="maintainers@icnet-ros.invalid",
    description="ICNet real-time semantic segmentation node for ROS 2",
    license="MIT",
    entry_points={
        "console_scripts": [
            "segmentation_node = icnet_ros.ros.node_main:main",
            "icnet-convert-caffe = icnet_ros.tools.convert_caffe:main",
            "icnet-import-checkpoint = icnet_ros.tools.import_checkpoint:main",
            "icnet-eval = icnet_ros.tools.evaluate_bag:main",
            "icnet-make-sample-bag = icnet_ros.tools.make_sample_bag:main",
            "icnet-bench = icnet_bench.model_bench:main",
            "icnet-bench-node = icnet_bench.node_bench:main",
            "icnet-train = icnet_train.cli:main",
        ],
    },
)
