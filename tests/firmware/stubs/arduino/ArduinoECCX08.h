#pragma once
struct ECCX08Class {
  int begin() { return 1; }
};
inline ECCX08Class ECCX08;
