"""The pretix side of `pretix-forge demo`: a throwaway pretix shop with one plugin variant.

pretix-forge writes this package, the NodeRails simulator and the variant's sdist into a
throwaway folder and runs ``python -m forge_demo SPEC.json`` with an interpreter that has
pretix. This process then installs the sdist into a private folder, creates the shop in a
fresh sqlite database, starts the simulator, serves pretix on 127.0.0.1 and either waits
for SIGINT/SIGTERM or takes the screenshots and exits.
"""
