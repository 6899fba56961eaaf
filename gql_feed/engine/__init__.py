"""One pipeline for every GraphQL request, whatever the transport.

admission (token, the user still exists, throttles, size limits) -> document (parsed once,
analysed once) -> validation -> execution -> result. Transports call in here and only
speak their wire format.
"""
