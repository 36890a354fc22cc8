"""Chain-of-thought templates, FLAN 2022 style, written for it_jax: each asks for reasoning before the answer.

Every template's target is `{target}`: the chain of thought followed by a sentence stating the answer.
Questions that carry their own options (aqua, creak, ecqa, qasc, sensemaking) are shown as they are.
"""

GSM8K = (
    ("{question}\nLet's think step by step.", "{target}"),
    ("Solve this math word problem. Show your work, then give the final number.\n\n{question}", "{target}"),
    ("Question: {question}\nWork it out step by step before answering.\nAnswer:", "{target}"),
    ("{question}\n\nReason through the arithmetic carefully, then state the answer.", "{target}"),
    ("Here is a grade-school math problem: {question}\nExplain how you get the answer.", "{target}"),
    ("Q: {question}\nA: Let's work this out one step at a time.", "{target}"),
    ("Calculate the answer to the problem below, explaining each step.\n\n{question}", "{target}"),
    ("A student asks: \"{question}\" Walk them through the solution and finish with the answer.", "{target}"),
)

STRATEGYQA = (
    ("{question}\nThink it through first, then answer yes or no.", "{target}"),
    ("Question: {question}\nReason step by step before giving a yes or no answer.", "{target}"),
    ("Answer the question below with yes or no. Explain your reasoning first.\n\n{question}", "{target}"),
    ("Q: {question}\nA: Let's reason about the facts we need.", "{target}"),
    ("{question}\n\nTo answer this, combine a few facts. What are they, and what is the answer?", "{target}"),
    ("Use some general knowledge to work out the answer: {question}", "{target}"),
    ("Is the answer to this yes or no? {question}\nGive the reasons before the verdict.", "{target}"),
    ("Someone wonders: \"{question}\" Lay out the reasoning, then say yes or no.", "{target}"),
)

CREAK = (
    ("{question}\nLet's think before answering.", "{target}"),
    ("Check the claim in the question below. Explain your reasoning, then choose an option.\n\n{question}", "{target}"),
    ("Question: {question}\nThink step by step about whether the claim holds.", "{target}"),
    ("{question}\n\nFirst give a short justification, then the answer.", "{target}"),
    ("Use common sense to evaluate this.\n{question}", "{target}"),
    ("Q: {question}\nA: Here is my reasoning.", "{target}"),
    ("Fact check: {question}\nWhat do you know that settles it?", "{target}"),
    ("Consider what is commonly known, then answer.\n\n{question}", "{target}"),
)

QASC = (
    ("{question}\nLet's reason through this step by step.", "{target}"),
    ("Answer the science question below. Chain two facts together before choosing.\n\n{question}", "{target}"),
    ("Question: {question}\nExplain which facts lead to the answer, then pick it.", "{target}"),
    ("{question}\n\nThink about the relevant facts first.", "{target}"),
    ("Q: {question}\nA: Let's combine what we know.", "{target}"),
    ("Use two related science facts to answer this question.\n{question}", "{target}"),
    ("Here is a grade-school science question: {question}\nShow your reasoning and give the letter of the answer.", "{target}"),
    ("Pick the right option, but explain why first.\n\n{question}", "{target}"),
)

ECQA = (
    ("{question}\nLet's think carefully before choosing.", "{target}"),
    ("Answer the commonsense question below. Explain your choice first.\n\n{question}", "{target}"),
    ("Question: {question}\nReason step by step, then pick an option.", "{target}"),
    ("{question}\n\nWhy is one option better than the others? Explain, then answer.", "{target}"),
    ("Q: {question}\nA: Let's reason it out.", "{target}"),
    ("Use everyday knowledge to answer this.\n{question}", "{target}"),
    ("Choose the best answer, and justify it before you give it.\n\n{question}", "{target}"),
    ("Someone asked me: \"{question}\" Think it over and tell me the answer.", "{target}"),
)

SENSEMAKING = (
    ("{question}\nLet's think about each sentence.", "{target}"),
    ("Decide which sentence fits the question below. Explain why first.\n\n{question}", "{target}"),
    ("Question: {question}\nReason about what makes sense, then answer.", "{target}"),
    ("{question}\n\nGive a short explanation, then name the sentence.", "{target}"),
    ("Q: {question}\nA: Let's use common sense.", "{target}"),
    ("Common sense check.\n{question}", "{target}"),
    ("Read both sentences and explain which one is the answer.\n\n{question}", "{target}"),
    ("Think step by step about the sentences below and pick one.\n{question}", "{target}"),
)

AQUA = (
    ("{question}\nLet's think step by step.", "{target}"),
    ("Solve the math problem below. Show your work, then give the letter of the correct option.\n\n{question}", "{target}"),
    ("Question: {question}\nWork it out before choosing.", "{target}"),
    ("{question}\n\nCalculate the answer and explain the steps.", "{target}"),
    ("Q: {question}\nA: Let's do the math first.", "{target}"),
    ("Here is a multiple-choice math question: {question}\nExplain your solution, then pick an option.", "{target}"),
    ("Solve this quantitative reasoning problem, showing the steps.\n{question}", "{target}"),
    ("Pick the right answer to the question below after working it out.\n\n{question}", "{target}"),
)

# Input inversion (FLAN 2022 trains CoT in both directions): from an answer, or a worked solution, back to a
# question. Trained on, not evaluated; shared by every dataset.
INVERSION = (
    ("Make up a question whose answer is {answer}, and show the reasoning that leads to it.",
     "Question: {question}\nReasoning: {chain_of_thought}"),
    ("Here is a worked solution:\n{chain_of_thought}\nWhat question was it solving?", "{question}"),
    ("{target}\n\nWrite the question this explanation answers.", "{question}"),
    ("Invent a problem that someone could solve step by step to reach \"{answer}\". Give the problem, then the "
     "steps.", "{question}\n\n{chain_of_thought}"),
    ("Reasoning: {chain_of_thought}\nAnswer: {answer}\nWhich question fits this reasoning and answer?", "{question}"),
    ("The final answer is {answer}. Pose a question that leads there and justify it.",
     "{question}\nJustification: {chain_of_thought}"),
)

TEMPLATES = {
    "gsm8k": GSM8K,
    "strategyqa": STRATEGYQA,
    "creak": CREAK,
    "qasc": QASC,
    "ecqa": ECQA,
    "sensemaking": SENSEMAKING,
    "aqua": AQUA,
}
