import os

import pytest

from tests.support.openai_server import OpenAIServer


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random Llama (2 layers, width 64) with the embedded model's real
    tokenizer and chat template, saved as a checkpoint directory."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from faqforge.models.checkpoints import load_tokenizer
    tokenizer = load_tokenizer("embedded:smollm2-135m-instruct")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def openai_server():
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def paths(monkeypatch):
    """Counts the calls of each fuzzy search path (exhaustive, index), so a test
    knows which one ran."""
    from faqforge.refinement import fuzzy
    calls = {"exhaustive": 0, "index": 0}
    for name, attr in (("exhaustive", "all_pairs_above"), ("index", "indexed_pairs_above")):
        real = getattr(fuzzy, attr)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(fuzzy, attr, counted)
    return calls


@pytest.fixture
def browser():
    """Headless Chromium (Debian's chromium and chromium-driver; `make test` installs them)."""
    if not os.path.exists("/usr/bin/chromedriver"):
        pytest.skip("chromium-driver is not installed: make browser (as root), or apt-get install chromium "
                    "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()
