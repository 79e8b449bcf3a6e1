# Per-target helpers, applied PRIVATE so consumers of our targets never inherit them.

function(thrum_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                                           -Wnon-virtual-dtor -Wcast-align -Wunused
                                           -Woverloaded-virtual)
  # GCC 12 reports -Wrestrict false positives inside libstdc++'s std::string concatenation at
  # -O2 (GCC bug 105329); the warning says nothing about our code there.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(THRUM_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

function(thrum_target_sanitizers target)
  if(THRUM_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

function(thrum_target_defaults target)
  thrum_target_warnings(${target})
  thrum_target_sanitizers(${target})
endfunction()
