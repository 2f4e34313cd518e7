"""The model: TensorFlow imported quietly, the Keras network trained, and the NumPy runner of a saved model."""
