"""sitechat: an embeddable, multi-tenant website chatbot with streaming, grounded answers."""

__version__ = "0.1.0"
