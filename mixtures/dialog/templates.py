"""Dialog templates, FLAN 2022 style, written for it_jax.

Next-turn templates end with `{dialog}` (header, context turns, then the marker of the turn to predict) so the
input stops where the reply starts; their target is `{next_turn}`. Inversion templates show the reply and
ask for what came before it: the whole rendered context (`{context}`) or the turn just before (`{previous_turn}`).
"""

NEXT_TURN = (
    ("Continue this conversation with the next turn.\n\n{dialog}", "{next_turn}"),
    ("What is the most natural thing to say next?\n\n{dialog}", "{next_turn}"),
    ("Write the next reply in the dialog below.\n{dialog}", "{next_turn}"),
    ("{dialog}", "{next_turn}"),
    ("Here is part of a chat. Respond as the next speaker would.\n\n{dialog}", "{next_turn}"),
    ("Read the exchange and produce the response that comes next.\n{dialog}", "{next_turn}"),
    ("Given the conversation so far, what does the next speaker say?\n\n{dialog}", "{next_turn}"),
    ("The last turn of this dialog is missing. Write it.\n{dialog}", "{next_turn}"),
    ("You are taking part in the following conversation. Write your next message.\n\n{dialog}", "{next_turn}"),
    ("Complete the dialog by adding one more turn.\n{dialog}", "{next_turn}"),
)

INVERSION = (
    ('This reply comes from a conversation: "{next_turn}"\nWrite the conversation that led to it.', "{context}"),
    ("Reply: {next_turn}\n\nWhat dialog came before this reply?", "{context}"),
    ('Imagine a conversation whose next line is "{next_turn}". Write the turns before it.', "{context}"),
    ("Write a dialog that the following response would continue.\nResponse: {next_turn}", "{context}"),
    ('Someone answered: "{next_turn}"\nReconstruct the conversation up to that answer.', "{context}"),
    ("What was said just before this reply?\n\n{next_turn}", "{previous_turn}"),
    ("Reply: {next_turn}\nWrite the message this reply responds to.", "{previous_turn}"),
    ('"{next_turn}" was said in answer to something. What was it?', "{previous_turn}"),
    (
        "Write the turn that most likely came right before this response in a conversation: {next_turn}",
        "{previous_turn}",
    ),
    ('In a chat, the next message was "{next_turn}". What was the previous message?', "{previous_turn}"),
)
