"""What only the notebooks need: figures (`plots`), interactive viewers (`widgets`, the one module
that imports ipywidgets) and the exercise checks (`check`). The core package imports none of them."""
