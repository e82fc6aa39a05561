"""faqforge: turn a folder of documents into a fine-tuned FAQ chatbot, as a DVC pipeline."""

__version__ = "0.1.0"
