"""The local twin: loopback stand-ins for the cloud services the flow needs (see DESIGN.md, section 2).

Every server here listens on 127.0.0.1 on a free port and is stopped by whoever started it.
"""
