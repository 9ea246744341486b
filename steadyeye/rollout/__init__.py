"""`steadyeye rollout`: a model's candidate version beside the serving one in Triton."""
