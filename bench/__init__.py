"""bench: evaluation core for Revisited Oxford/Paris, PROxford/PRParis and GPR1200.

Never imports streamlit. Protocol references (section numbers) point to docs/PROTOCOLS.md.
"""

__version__ = "0.1.0"
