"""The one builder of the teacher's few-shot chats: a system prompt, each worked
example as an earlier user turn with the reply it should get, then the request.
Small teachers follow a format when shown one, and copy an example far less
when it sits in its own turns than inside the instruction."""


def few_shot(system_prompt, user_prompt, examples, request):
    """[system, (user, assistant) per example, user]. `examples` holds (the
    fields `user_prompt` is filled with, the reply) per worked example;
    `request` the fields of the real question. Every text is stripped."""
    messages = [{"role": "system", "content": system_prompt.strip()}]
    for fields, reply in examples:
        messages += [{"role": "user", "content": user_prompt.format(**fields).strip()},
                     {"role": "assistant", "content": reply.strip()}]
    messages.append({"role": "user", "content": user_prompt.format(**request).strip()})
    return messages
