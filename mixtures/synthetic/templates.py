"""Instruction templates of the synthetic collection, as data: task -> list of (inputs, targets) patterns.

FLAN-style variety: questions and imperatives, the question before or after the content, and for some
tasks an inverted framing (asking for the smaller number, decoding instead of encoding, ...). Every
template of a classification task ends its input with the `{options_}` block on its own line.
"""

from __future__ import annotations

TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "addition": [
        ("What is {a} plus {b}?", "{answer}"),
        ("Add {a} and {b}.", "{answer}"),
        ("{a} + {b} = ?", "{answer}"),
        ("Compute the sum of the following two numbers: {a} and {b}", "{answer}"),
        ("Mia had {a} stickers and was given {b} more. How many stickers does Mia have now?", "{answer}"),
        ("Q: What number do you get when you add {b} to {a}?\nA:", "{answer}"),
        ("What number must be added to {a} to get {answer}?", "{b}"),
    ],
    "larger_number": [
        ("Which number is larger, {a} or {b}?\n{options_}", "{larger}"),
        ("Pick the bigger of these two numbers.\n{options_}", "{larger}"),
        ("{a} and {b}: which one is greater?\n{options_}", "{larger}"),
        ("Is {a} or {b} the larger number?\n{options_}", "{larger}"),
        ("Choose the greatest value among the options.\n{options_}", "{larger}"),
        ("Which is smaller: {a} or {b}?\n{options_}", "{smaller}"),
    ],
    "reverse_word": [
        ("Reverse the word \"{word}\".", "{answer}"),
        ("How is \"{word}\" spelled backwards?", "{answer}"),
        ("Write the letters of {word} in reverse order.", "{answer}"),
        ("Word: {word}\n\nWhat is this word written backwards?", "{answer}"),
        ("Spell \"{word}\" from its last letter to its first.", "{answer}"),
        ("\"{answer}\" is a word spelled backwards. What is the word?", "{word}"),
    ],
    "count_letter": [
        ("How many times does the letter \"{letter}\" appear in \"{word}\"?", "{answer}"),
        ("Count the occurrences of the letter {letter} in the word {word}.", "{answer}"),
        ("Word: {word}\nLetter: {letter}\n\nHow often does the letter occur in the word?", "{answer}"),
        ("In the word \"{word}\", how many {letter}'s are there?", "{answer}"),
        ("Tell me the number of times \"{letter}\" occurs in \"{word}\".", "{answer}"),
    ],
    "sort_list": [
        ("Sort these numbers from smallest to largest: {numbers}", "{ascending}"),
        ("Put the following list in ascending order.\n\n{numbers}", "{ascending}"),
        ("{numbers}\n\nWhat is this list of numbers sorted in increasing order?", "{ascending}"),
        ("Arrange {numbers} in order, lowest first.", "{ascending}"),
        ("List: {numbers}\nSorted list:", "{ascending}"),
        ("Sort the numbers {numbers} from largest to smallest.", "{descending}"),
    ],
    "list_extremes": [
        ("What is the largest number in this list: {numbers}?", "{largest}"),
        ("Find the maximum of the following numbers.\n\n{numbers}", "{largest}"),
        ("{numbers}\n\nWhich of these numbers is the biggest?", "{largest}"),
        ("Numbers: {numbers}\nMaximum:", "{largest}"),
        ("Return the highest value in the list [{numbers}].", "{largest}"),
        ("What is the smallest number among {numbers}?", "{smallest}"),
    ],
    "longer_word": [
        ("Which word is longer, \"{first}\" or \"{second}\"?\n{options_}", "{longer}"),
        ("Pick the word with more letters.\n{options_}", "{longer}"),
        ("{first} or {second}: which has more letters?\n{options_}", "{longer}"),
        ("Of the words \"{first}\" and \"{second}\", which one is spelled with more letters?\n{options_}",
         "{longer}"),
        ("Choose the longest word among the options.\n{options_}", "{longer}"),
        ("Which of \"{first}\" and \"{second}\" is the shorter word?\n{options_}", "{shorter}"),
    ],
    "alphabetical_order": [
        ("Does \"{first}\" come before \"{second}\" in alphabetical order?\n{options_}", "{answer}"),
        ("In a dictionary, would {first} be listed before {second}?\n{options_}", "{answer}"),
        ("Words: {first}, {second}\n\nAre these two words in alphabetical order?\n{options_}", "{answer}"),
        ("Is \"{first}\" alphabetically earlier than \"{second}\"?\n{options_}", "{answer}"),
        ("Answer yes or no: does {second} come after {first} when sorted from A to Z?\n{options_}",
         "{answer}"),
    ],
    "item_inference": [
        ("{premise}. Does it follow that {hypothesis}?\n{options_}", "{answer}"),
        ("Premise: {premise}.\nHypothesis: {hypothesis}.\n{options_}", "{answer}"),
        ("{premise}. Can we conclude that {hypothesis}?\n{options_}", "{answer}"),
        ("If {premise}, is it true that {hypothesis}?\n{options_}", "{answer}"),
        ("Does \"{premise}\" imply \"{hypothesis}\"?\n{options_}", "{answer}"),
        ("Given {premise}, is \"{hypothesis}\" true?\n{options_}", "{answer}"),
    ],
    "syllogism": [
        ("{facts}\n{question}\n{options_}", "{answer}"),
        ("Facts: {facts}\nQuestion: {question}\n{options_}", "{answer}"),
        ("Using only these facts: {facts} {question}\n{options_}", "{answer}"),
        ("{question} Consider: {facts}\n{options_}", "{answer}"),
        ("{facts} Does it follow that {claim}?\n{options_}", "{answer}"),
        ("Assume: {facts} Is it certain that {claim}?\n{options_}", "{answer}"),
    ],
    "caesar_cipher": [
        ("Encrypt \"{text}\" with a Caesar cipher that shifts every letter 3 places forward.", "{cipher}"),
        ("Apply a shift-by-3 Caesar cipher to this text: {text}", "{cipher}"),
        ("Plain text: {text}\nCaesar cipher (shift 3):", "{cipher}"),
        ("What is \"{text}\" after replacing each letter by the one 3 positions later in the alphabet?",
         "{cipher}"),
        ("Translate \"{text}\" into the Caesar code where a becomes d, b becomes e, and so on.", "{cipher}"),
        ("Decode this Caesar cipher, in which every letter was shifted 3 places forward: {cipher}", "{text}"),
    ],
    "pig_latin": [
        ("Translate \"{text}\" into Pig Latin.", "{translation}"),
        ("How do you say \"{text}\" in Pig Latin?", "{translation}"),
        ("English: {text}\nPig Latin:", "{translation}"),
        ("Rewrite the following in Pig Latin: {text}", "{translation}"),
        ("{text}\n\nWhat is that phrase in Pig Latin?", "{translation}"),
    ],
}
