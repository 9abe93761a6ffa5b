"""Command-line options of the tests that train a model: runs of a second or two, which test the command and not
the model's quality."""

TINY_RUN = ["--epochs", "1", "--limit", "256", "--test-limit", "500"]  # one epoch on 256 images, measured on 500
TINY_PIXELCNN = ["--channels", "8", "--blocks", "1"]
