"""Scripts run by test_real_trainers.py with the trainers' venv's Python (not collected by pytest)."""
