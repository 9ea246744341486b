"""inference: letterboxed frames -> Triton (dynamic batching) -> detections in source pixels."""
