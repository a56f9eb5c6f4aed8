"""`make bench`: print every speed figure the issues ask for, measured in one run."""

from benchmarks import forecasting, foundation, optimization, pipeline, portfolio, speed

if __name__ == "__main__":
    foundation.run()
    forecasting.run()
    optimization.run()
    pipeline.run()
    portfolio.run()
    speed.run()
