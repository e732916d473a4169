"""Launch the ICNet segmentation node (``icnet_segmenter``), optionally with rviz2.

    ros2 launch icnet_ros segment.launch.py image:=/front/image_raw namespace:=front \
        weights:=/path/to/icnet.safetensors rviz:=true fixed_frame:=front_optical

The node reads ``params_file`` (default: the installed config/icnet.yaml); the
``weights``, ``device`` and ``precision`` arguments override it when given. The Fast DDS
shared-memory profile (config/fastdds_shm.xml) is set for the node and rviz2 unless
``shm_profile:=false``: full-resolution frames need it, and the camera driver must use
the same profile (docs/node.md). Two cameras: include this file twice with
two namespaces. ``rviz:=true`` starts rviz2 with a copy of config/icnet.rviz written for
this launch (icnet_ros/ros/rviz_config.py): its topics resolved in ``namespace``, the input
display on ``image``, Fixed Frame ``fixed_frame``.
"""

import tempfile
from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_prefix
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from icnet_ros.ros.rviz_config import rviz_config
from launch import LaunchContext, LaunchDescription

PACKAGE = "icnet_ros"
EXECUTABLE = "segmentation_node"
NODE_NAME = "icnet_segmenter"
PARAMS_FILE = "icnet.yaml"
RVIZ_CONFIG = "icnet.rviz"
FASTDDS_PROFILE = "fastdds_shm.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
# After Ctrl-C the node releases its model and ends its threads; on a busy machine that took
# more than launch's default 5 s before SIGTERM (up to 6.5 s seen with two nodes ending).
SIGTERM_TIMEOUT_S = "15"

ARGUMENTS = (
    ("image", "image", "Input image topic (raw; the compressed one is <image>/compressed)"),
    ("namespace", "", "Namespace of the node and its topics (one per camera)"),
    ("params_file", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", PARAMS_FILE]),
     "Parameter file of the node"),
    ("weights", "", "Weight file (.safetensors); '' = the params_file's"),
    ("device", "", "auto | cpu | cuda | cuda:N; '' = the params_file's"),
    ("precision", "", "fp32 | fp16 | bf16; '' = the params_file's"),
    ("use_sim_time", "false", "Use the /clock topic (replaying bags)"),
    ("rviz", "false", "Start rviz2 with config/icnet.rviz (input, overlay, colour mask)"),
    ("fixed_frame", "camera", "rviz2's Fixed Frame: the frame_id your camera stamps its images with"),
    ("shm_profile", "true", "Run the node and rviz2 with the Fast DDS shared-memory profile"),
    ("fastdds_profile", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", FASTDDS_PROFILE]),
     "The Fast DDS profile used when shm_profile is true"),
)


def _truthy(context: LaunchContext, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).strip().lower() in ("true", "1", "yes", "on")


def _require_rviz2() -> None:
    """Refuse ``rviz:=true`` before anything starts where rviz2 is not installed."""
    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        raise RuntimeError("rviz:=true but the package 'rviz2' is not installed: install it "
                           "(ros-<distro>-rviz2) or launch with rviz:=false") from None


def _write_rviz_config(context: LaunchContext, namespace: str, image: str) -> str:
    """config/icnet.rviz for this launch, written to a temporary file (as launch_ros writes
    parameter files): its path."""
    template = Path(PathJoinSubstitution([FindPackageShare(PACKAGE), "config", RVIZ_CONFIG]).perform(context))
    text = rviz_config(template.read_text(), namespace=namespace, image=image,
                       fixed_frame=LaunchConfiguration("fixed_frame").perform(context))
    with tempfile.NamedTemporaryFile("w", prefix="icnet_", suffix=".rviz", delete=False) as file:
        file.write(text)
    return file.name


def _actions(context: LaunchContext) -> list:
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    with_rviz = _truthy(context, "rviz")
    if with_rviz:
        _require_rviz2()

    overrides = {name: value(name) for name in ("weights", "device", "precision") if value(name)}
    use_sim_time = _truthy(context, "use_sim_time")
    # Fast DDS 3 (Kilted and newer) reads the first variable, Fast DDS 2 (Humble, Jazzy) the second.
    env = {variable: value("fastdds_profile") for variable in PROFILE_VARIABLES} \
        if _truthy(context, "shm_profile") else {}
    image = value("image")
    remappings = [("image", image), ("image/compressed", f"{image}/compressed")]
    actions = [Node(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=value("namespace"),
        parameters=[value("params_file"), {**overrides, "use_sim_time": use_sim_time}],
        remappings=remappings, additional_env=env, output="screen", emulate_tty=True,
        sigterm_timeout=SIGTERM_TIMEOUT_S)]
    if with_rviz:
        actions.append(Node(
            package="rviz2", executable="rviz2", name="rviz2", namespace=value("namespace"),
            arguments=["-d", _write_rviz_config(context, value("namespace"), image)],
            parameters=[{"use_sim_time": use_sim_time}], additional_env=env, output="screen"))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=_actions)])
