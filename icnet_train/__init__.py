"""icnet_train: offline training of ICNet (never imports rclpy)."""
