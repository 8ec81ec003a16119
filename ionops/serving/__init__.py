"""Using trained surrogates: loading, prediction, comparison with the solver, MLflow models."""
