"""preprocess: decode frames, letterbox them to the model's contract, measure quality."""
