"""Finding the program in a response."""

from __future__ import annotations

from cascade_plugins.rewards.code.extract import extract_program, fence_language


def test_last_block_of_the_final_answer_in_the_right_language():
    response = (
        "<think>```python\nprint('draft')\n```</think>\nRun it:\n```bash\npython main.py\n```\n"
        "```python\nprint('first')\n```\nbetter:\n```py\nprint('final')\n```\n"
    )
    assert extract_program(response, "python") == "print('final')\n"
    assert extract_program(response, "python", block="first") == "print('first')\n"


def test_untagged_fences_count_and_other_languages_do_not():
    assert extract_program("```\nx = 1\n```", "python") == "x = 1\n"
    assert extract_program("```cpp\nint main(){}\n```", "python") is None
    assert extract_program("```c++\nint main(){}\n```", "cpp") == "int main(){}\n"


def test_unclosed_thinking_has_no_answer():
    assert extract_program("<think>\n```python\nx=1\n```", "python") is None
    assert extract_program("<think>\n```python\nx=1\n```", "python", strip_think=False) == "x=1\n"


def test_without_a_fence_only_when_allowed():
    assert extract_program("print(1)", "python") is None
    assert extract_program("print(1)", "python", require_fence=False) == "print(1)"
    assert extract_program("```python\n   \n```", "python") is None


def test_fence_language():
    assert fence_language("Python3 title") == "python"
    assert fence_language("") == ""
    assert fence_language("rust") is None


def test_cpp_dialect_fences_name_their_standard():
    from cascade_plugins.rewards.code.extract import find_program

    response = "```c++20\nint main(){}\n```"
    assert find_program(response, "cpp") == ("int main(){}\n", "c++20")
    assert find_program(response.replace("c++20", "cpp"), "cpp") == ("int main(){}\n", "cpp")
    assert find_program(response, "python") is None  # a C++ fence is not a Python program
    assert fence_language("gnu++23") == "cpp" and fence_language("c++99") is None
