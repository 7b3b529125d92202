"""`tfsconvert parity SOURCE ARTIFACT --data PATH`: the source and the converted artifact scored on a
whole data set on Spark, compared row by row, with only per-partition statistics brought back to
the driver (docs/parity.md).

plan (what to score, on the driver) -> data (the rows as a Spark DataFrame) -> scoring (each
partition, in the Python workers) -> stats (merged on the driver) -> report / golden_writer.
"""
