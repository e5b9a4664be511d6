"""The matching engine: embedding, the fitted catalog index, signals, fusion, explanations."""
