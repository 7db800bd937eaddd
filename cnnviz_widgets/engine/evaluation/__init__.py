"""Scoring attribution maps: lesson 13.

=====================  ==========================================================
`scores`               pointing game, mask mass, deletion/insertion curves, cascading
                       randomisation of any method
`compare`              the seven methods behind one call, each scored
=====================  ==========================================================

`evaluation` imports `core`, `zoo`, `inspect` and `attribution`.
"""
