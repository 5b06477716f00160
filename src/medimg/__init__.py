"""medimg: find every image in files, PDFs and web pages and say whether it is a medical image."""

__version__ = "0.1.0"
